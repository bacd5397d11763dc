"""The web page of `nsscale serve`: one HTML shell at `/` (the fleet) and at
`/namespaces/<namespace>` (one namespace), its script and its stylesheet, all from the package.

The page holds no data, so it needs no token: its script asks for the token once, keeps it in
the tab (`sessionStorage`) and sends it as a bearer header to the JSON API, which decides what
the caller may see and do. No cookie, no token in a URL, nothing from another host: the
Content-Security-Policy lets the page load and call only this server, and run no inline script
or style.

    GET /                              the page (the fleet)
    GET /namespaces/<namespace>        the same page (the script shows that namespace)
    GET /static/<file>                 page.js, page.css, favicon.svg
"""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Flask, Response, render_template, send_from_directory

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "connect-src 'self'",
        "img-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",  # the token form is the script's: never submitted to a URL
        "frame-ancestors 'none'",
    )
)
HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # a new version's script is fetched at once; an unchanged one answers 304 (its ETag)
    "Cache-Control": "no-cache",
}

STATIC = Path(__file__).parent / "static"
# as the API's routes: no automatic OPTIONS (a path answers only what it was written to)
ONLY_GET = {"provide_automatic_options": False}

page = Blueprint("web", __name__, template_folder="templates")


@page.get("/", **ONLY_GET)
def fleet() -> str:
    return render_template("page.html")


@page.get("/namespaces/<namespace>", **ONLY_GET)
def namespace(namespace: str) -> str:
    """The same shell: the script reads the namespace from the path (nothing is echoed here)."""
    del namespace
    return render_template("page.html")


@page.get("/static/<path:filename>", **ONLY_GET)
def static(filename: str) -> Response:
    """The script, the stylesheet, the icon (a name outside the folder: 404)."""
    return send_from_directory(STATIC, filename)


@page.after_request
def _secure(response: Response) -> Response:
    """The page's and its files' headers (a 404 of /static/ included)."""
    response.headers.update(HEADERS)
    return response


def install(app: Flask) -> None:
    """Serve the page from `app` (created with static_folder=None: the page's files are
    served here, with the headers above, and nowhere else)."""
    app.register_blueprint(page)
