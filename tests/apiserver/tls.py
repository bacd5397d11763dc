"""HTTPS in front of the local API server, the way a pod reaches the real one.

kubectl's in-cluster login speaks only HTTPS, to `KUBERNETES_SERVICE_HOST:PORT`, trusting the
service account's `ca.crt`. :class:`TlsFront` terminates TLS with a certificate for 127.0.0.1
signed by a throw-away CA and passes every byte on to the plain-HTTP server, one backend
connection per client connection, so the server sees exactly what kubectl sent (its bearer
token among it).
"""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import selectors
import socket
import ssl
import threading
from pathlib import Path
from types import TracebackType

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

__all__ = ["TlsFront", "write_certificates"]


def write_certificates(folder: Path) -> tuple[Path, Path, Path]:
    """A CA and a server certificate for 127.0.0.1 signed by it: (ca.crt, tls.crt, tls.key)."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "nsscale-test-ca")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kubernetes")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    paths = (folder / "ca.crt", folder / "tls.crt", folder / "tls.key")
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return paths


class TlsFront:
    """A TLS listener on 127.0.0.1 (any free port) in front of ``backend_port``, with the
    certificate ``cert`` that the CA ``ca`` signed."""

    def __init__(self, backend_port: int, cert: Path, key: Path, ca: Path) -> None:
        self.backend_port = backend_port
        self.ca = ca
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(cert, key)
        self.context.set_alpn_protocols(["http/1.1"])  # the server behind speaks HTTP/1.1
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self.connections = 0
        self._closed = threading.Event()

    def __enter__(self) -> TlsFront:
        threading.Thread(target=self._accept, name="tls-front", daemon=True).start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._closed.set()
        self._listener.close()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:  # closed
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        try:
            secure = self.context.wrap_socket(client, server_side=True)
        except (ssl.SSLError, OSError):
            client.close()
            return
        self.connections += 1
        backend = socket.create_connection(("127.0.0.1", self.backend_port))
        _relay(secure, backend)

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"


def _relay(secure: ssl.SSLSocket, backend: socket.socket) -> None:
    """Bytes both ways until either end closes, in one thread: an SSL socket must not be read
    and written from two threads at once."""
    other = {secure: backend, backend: secure}
    try:
        with selectors.DefaultSelector() as selector:
            for end in other:
                selector.register(end, selectors.EVENT_READ)
            while True:
                for key, _ in selector.select():
                    end = secure if key.fileobj is secure else backend
                    chunk = end.recv(65536)
                    if not chunk:
                        return
                    other[end].sendall(chunk)
                    # what TLS decrypted beyond this read waits in the SSL object, not the socket
                    while end is secure and secure.pending():
                        backend.sendall(secure.recv(secure.pending()))
    except OSError:
        return
    finally:
        for end in other:
            with contextlib.suppress(OSError):
                end.close()
