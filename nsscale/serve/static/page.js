// The page of `nsscale serve`: the fleet at `/`, one namespace at `/namespaces/<ns>`.
// Hand-written, no framework, no build step. Every datum comes from the JSON API with the
// token the person typed once: kept in this tab (sessionStorage), sent as a bearer header.
// The DOM is built with createElement and textContent only: nothing the API says is parsed as
// HTML. The Content-Security-Policy allows no inline script or style attribute.
"use strict";

(function () {
  const TOKEN_KEY = "nsscale.token";
  const HOLD = "4h"; // the "Wake for 4 h" button: activate with {"hold": "4h"}
  const REFRESH_MS = 60e3; // the view is brought up to date every minute while the tab is seen
  const SLOTS = 48; // the week strip's slots per day (30 minutes each)
  const STATES = {
    awake: { word: "Awake", mark: "\u25CF" }, // ●
    asleep: { word: "Asleep", mark: "\u25CB" }, // ○
    partly: { word: "Partly up", mark: "\u25D0" }, // ◐
    empty: { word: "Empty", mark: "\u2013" }, // –
  };
  const ACTIONS = {
    sleep: { label: "Sleep", path: "deactivate", body: {}, doing: "Sleeping" },
    wake: { label: "Wake", path: "activate", body: {}, doing: "Waking" },
    hold: { label: "Wake for 4 h", path: "activate", body: { hold: HOLD }, doing: "Waking for 4 h" },
  };

  class NeedToken extends Error {}

  // ------------------------------------------------------------------ DOM helpers

  /** An element: attrs are attributes (never `style`), children are nodes or text. */
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      node.setAttribute(name, value === true ? "" : String(value));
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  const $ = (selector, root) => (root || document).querySelector(selector);
  const apiPath = (namespace) => `/api/namespaces/${encodeURIComponent(namespace)}`;
  const namespaceHref = (namespace) => `/namespaces/${encodeURIComponent(namespace)}`;

  // ------------------------------------------------------------------ time

  function zoneOk(zone) {
    try {
      new Intl.DateTimeFormat("en-GB", { timeZone: zone });
      return true;
    } catch (err) {
      return false;
    }
  }

  /** "Mon 20:00" in the zone (the schedule's), or with the date when it is not this week. */
  function clock(iso, zone) {
    const when = new Date(iso);
    if (Number.isNaN(when.getTime())) return iso;
    const options = { weekday: "short", hour: "2-digit", minute: "2-digit", hourCycle: "h23" };
    if (Math.abs(when - Date.now()) > 6 * 86400e3) {
      Object.assign(options, { day: "numeric", month: "short" });
    }
    options.timeZone = zone && zoneOk(zone) ? zone : "UTC";
    return new Intl.DateTimeFormat("en-GB", options).format(when);
  }

  /** "in 3 h 12 min", "4 min ago". */
  function relative(iso) {
    const ms = new Date(iso).getTime() - Date.now();
    if (Number.isNaN(ms)) return "";
    const minutes = Math.round(Math.abs(ms) / 60e3);
    let span;
    if (minutes < 1) span = "less than a minute";
    else if (minutes < 60) span = `${minutes} min`;
    else if (minutes < 48 * 60) {
      const h = Math.floor(minutes / 60);
      const m = minutes % 60;
      span = m ? `${h} h ${m} min` : `${h} h`;
    } else span = `${Math.round(minutes / 1440)} days`;
    return ms >= 0 ? `in ${span}` : `${span} ago`;
  }

  function timeEl(iso, zone) {
    const shown = `${clock(iso, zone)} (${relative(iso)})`;
    return el("time", { datetime: iso, title: `${iso}${zone ? ` \u00b7 ${zone}` : ""}` }, shown);
  }

  // ------------------------------------------------------------------ the API

  function token() {
    return sessionStorage.getItem(TOKEN_KEY);
  }

  /** One call of the JSON API: {status, data}. A 401 forgets the token and asks again. */
  async function api(method, path, body) {
    const bearer = token();
    if (!bearer) {
      showLogin("");
      throw new NeedToken();
    }
    const init = {
      method,
      headers: { Authorization: `Bearer ${bearer}`, Accept: "application/json" },
      cache: "no-store",
      credentials: "omit",
      redirect: "error",
    };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(path, init);
    } catch (err) {
      return { status: 0, data: { success: false, message: `the server did not answer (${err.message})` } };
    }
    let data;
    try {
      data = await response.json();
    } catch (err) {
      data = { success: false, message: `the answer is not JSON (HTTP ${response.status})` };
    }
    if (response.status === 401) {
      sessionStorage.removeItem(TOKEN_KEY);
      showLogin(`The server refused the token: ${data.message || "401"}. Enter it again.`);
      throw new NeedToken();
    }
    return { status: response.status, data };
  }

  // ------------------------------------------------------------------ sign in

  function showLogin(why) {
    const form = $("#login");
    $("#view").replaceChildren();
    $("#tools").hidden = true;
    $("#login-why").textContent = why;
    form.hidden = false;
    $("#token").value = "";
    $("#token").focus();
  }

  function onLogin(event) {
    event.preventDefault(); // never submitted: form-action 'none', and the token stays here
    const typed = $("#token").value.trim();
    if (!typed) return;
    sessionStorage.setItem(TOKEN_KEY, typed);
    $("#token").value = "";
    $("#login").hidden = true;
    start();
  }

  function signOut() {
    sessionStorage.removeItem(TOKEN_KEY);
    showLogin("Token forgotten.");
  }

  // ------------------------------------------------------------------ the week strip

  function dayLabel(date, index) {
    const names = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    const day = /^\d{4}-\d{2}-(\d{2})$/.exec(date || "");
    return day ? `${names[index]} ${Number(day[1])}` : names[index];
  }

  /** 7 days × 48 half hours, down shaded, a marker at now; every cell says what it is in its
   * data attributes (day index, slot, up). */
  function weekStrip(week) {
    const strip = el("div", {
      class: "week",
      role: "img",
      "aria-label": `Week in ${week.zone}: shaded half hours are down; the bar marks now`,
    });
    const ticks = el("div", { class: "week-ticks", "aria-hidden": "true" }, el("span"));
    const scale = el("span", { class: "week-scale" });
    for (const hour of [0, 6, 12, 18, 24]) {
      scale.append(el("span", { class: `tick tick-${hour}` }, String(hour).padStart(2, "0")));
    }
    ticks.append(scale);
    strip.append(ticks);
    week.up.forEach((slots, day) => {
      const today = week.now && week.now.day === day;
      const cells = el("span", { class: "week-cells" });
      for (let slot = 0; slot < SLOTS; slot++) {
        const up = slots[slot] === "1";
        cells.append(
          el("span", {
            class: up ? "slot up" : "slot down",
            "data-day": day,
            "data-slot": slot,
            "data-up": up ? "1" : "0",
          }),
        );
      }
      if (today) {
        const marker = el("span", { class: "now", "data-minute": week.now.minute });
        // CSSOM, not a style attribute: allowed by style-src 'self'
        marker.style.left = `${(100 * week.now.minute) / 1440}%`;
        cells.append(marker);
      }
      strip.append(
        el(
          "div",
          { class: today ? "week-row today" : "week-row", "data-date": week.days[day] || "" },
          el("span", { class: "week-day" }, dayLabel(week.days[day], day)),
          cells,
        ),
      );
    });
    strip.append(
      el(
        "p",
        { class: "week-legend muted", "aria-hidden": "true" },
        `times in ${week.zone} `,
        el("span", { class: "key key-up" }),
        " up ",
        el("span", { class: "key key-down" }),
        " down ",
        el("span", { class: "key key-now" }),
        " now",
      ),
    );
    return strip;
  }

  // ------------------------------------------------------------------ one namespace's card

  function stateBadge(state) {
    const known = STATES[state] || { word: state || "unknown", mark: "?" };
    return el(
      "span",
      { class: `state state-${state}`, "data-state": state },
      el("span", { class: "state-mark", "aria-hidden": "true" }, known.mark),
      ` ${known.word}`,
    );
  }

  function fact(term, ...value) {
    return [el("dt", {}, term), el("dd", {}, ...value)];
  }

  function scheduleFact(ns) {
    if (!ns.schedule) return ["none", ns.schedule_source ? ` (${ns.schedule_source})` : ""];
    const kind = ns.schedule_kind ? `${ns.schedule_kind} ` : "";
    return [
      `${kind}`,
      el("code", {}, ns.schedule),
      ns.schedule_source ? el("span", { class: "muted" }, ` \u00b7 ${ns.schedule_source}`) : "",
    ];
  }

  function nextFact(ns) {
    if (!ns.next_change) return [ns.schedule ? "no change in sight" : "\u2014"];
    const becomes = ns.desired === "up" ? "sleeps" : ns.desired === "down" ? "wakes" : "changes";
    return [`${becomes} `, timeEl(ns.next_change, ns.timezone)];
  }

  function holdFact(ns) {
    if (!ns.pause_until) return ["none"];
    return ["held until ", timeEl(ns.pause_until, ns.timezone)];
  }

  function lastRunFact(run) {
    if (!run) return ["none recorded"];
    return [
      el("span", { class: `outcome outcome-${run.outcome}` }, `${run.operation} ${words(run.outcome)}`),
      run.by ? ` by ${run.by}` : "",
      run.at ? [", ", el("time", { datetime: run.at, title: run.at }, relative(run.at))] : "",
    ];
  }

  function wantedFact(ns) {
    if (!ns.desired) return null;
    const reason = ns.reason ? el("span", { class: "muted" }, ` (${ns.reason})`) : "";
    const now = ns.state === "awake" ? "up" : ns.state === "asleep" ? "down" : null;
    if (now === ns.desired) return fact("Schedule wants", ns.desired, reason);
    // what the next reconcile would change (or why it will not): said, not only coloured
    const state = (STATES[ns.state] || { word: ns.state }).word.toLowerCase();
    const differs = el("strong", { class: "differs" }, `${ns.desired}, but it is ${state}`);
    return fact("Schedule wants", differs, reason);
  }

  function actions(ns) {
    const box = el("div", { class: "actions" });
    if (ns.protected) {
      box.append(el("p", { class: "muted" }, "Protected: nsscale never scales it."));
      return box;
    }
    for (const [name, action] of Object.entries(ACTIONS)) {
      const button = el(
        "button",
        { type: "button", class: `act act-${name}`, "data-action": name },
        action.label,
      );
      const press = () => (name === "sleep" ? confirmSleep(ns, box) : act(ns.namespace, name));
      button.addEventListener("click", press);
      box.append(button);
    }
    return box;
  }

  /** Sleep takes services down: one explicit step naming the namespace. Waking never waits. */
  function confirmSleep(ns, box) {
    const count = ns.workloads ? ns.workloads.up : "its";
    const yes = el(
      "button",
      { type: "button", class: "act act-confirm", "data-action": "confirm" },
      `Yes, sleep ${ns.namespace}`,
    );
    const no = el("button", { type: "button", class: "act", "data-action": "cancel" }, "Cancel");
    const ask = el(
      "div",
      { class: "confirm", role: "group", "aria-label": `Confirm sleeping ${ns.namespace}` },
      el("p", {}, `Scale ${count} running workload(s) of ${ns.namespace} to 0?`),
      yes,
      no,
    );
    const restore = () => {
      ask.replaceWith(box);
      $('[data-action="sleep"]', box).focus();
    };
    yes.addEventListener("click", () => {
      ask.replaceWith(box);
      act(ns.namespace, "sleep");
    });
    no.addEventListener("click", restore);
    ask.addEventListener("keydown", (event) => {
      if (event.key === "Escape") restore();
    });
    box.replaceWith(ask);
    yes.focus();
  }

  function card(ns, headingLevel) {
    const workloads = ns.workloads || { up: 0, total: 0 };
    const title = el(
      `h${headingLevel}`,
      { class: "ns-name" },
      headingLevel === 2 ? el("a", { href: namespaceHref(ns.namespace) }, ns.namespace) : ns.namespace,
    );
    const facts = el(
      "dl",
      { class: "facts" },
      fact("Schedule", ...scheduleFact(ns)),
      wantedFact(ns),
      fact("Next change", ...nextFact(ns)),
      fact("Hold", ...holdFact(ns)),
      fact("Last run", ...lastRunFact(ns.last_run)),
    );
    return el(
      "div",
      { class: "ns-body" },
      el(
        "div",
        { class: "ns-head" },
        title,
        stateBadge(ns.state),
        el(
          "span",
          { class: "count", "data-up": workloads.up, "data-total": workloads.total },
          `${workloads.up}/${workloads.total} up`,
        ),
      ),
      el(
        "div",
        { class: "ns-detail" },
        facts,
        ns.week ? weekStrip(ns.week) : el("p", { class: "week-none muted" }, "No schedule: no week to show."),
      ),
      actions(ns),
    );
  }

  /** The card's list item: the body (re-rendered on refresh) and the answer (kept). */
  function item(ns, headingLevel) {
    return el(
      "section",
      { class: "ns", "data-namespace": ns.namespace, "data-state": ns.state, "aria-label": ns.namespace },
      card(ns, headingLevel),
      el("div", { class: "answer", "aria-live": "polite", "data-for": ns.namespace }),
    );
  }

  // ------------------------------------------------------------------ answers

  const words = (text) => String(text || "").replaceAll("_", " "); // rolled_back: rolled back
  const ref = (r) => `${r.type}/${r.name}`;

  function list(className, rows) {
    return rows.length ? el("ul", { class: className }, rows.map((row) => el("li", {}, ...row))) : null;
  }

  /** What a run's answer says, for people: what changed, or what failed and what was put back. */
  function answerBody(status, data, action) {
    const result = data.result || {};
    const ok = status === 200 && data.success;
    const parts = [
      el(
        "p",
        { class: "answer-head" },
        el("strong", {}, ok ? "\u2714 Done: " : "\u2716 Failed: "),
        data.message || `HTTP ${status}`,
      ),
    ];
    if (ok) {
      const each = (rows, show) => (rows || []).map((r) => [ref(r), show(r)]);
      const changed = each(data.scaled_resources, (r) => ` ${r.from_replicas} \u2192 ${r.to_replicas}`);
      const suspended = each(result.suspended_resources, (r) => ` ${r.change || r.status || ""}`);
      const skipped = each(result.skipped_resources, (r) => el("span", { class: "muted" }, ` skipped: ${r.reason}`));
      if (!changed.length && !suspended.length) parts.push(el("p", {}, "Nothing to change."));
      parts.push(list("changes", [...changed, ...suspended, ...skipped]));
      if (action === "hold") parts.push(el("p", {}, "Held: schedules leave it awake for 4 h (see Hold)."));
    } else {
      const errors = data.error || result.errors || [];
      parts.push(list("errors", errors.map((e) => [e])));
      if (!errors.length) {
        const failed = (result.failed_resources || []).map((r) => [ref(r), ` failed: ${r.error}`]);
        parts.push(list("failed", failed));
      }
      const rolled = data.rollback_info;
      if (rolled) {
        const whole = rolled.failed_count === 0;
        parts.push(
          el(
            "p",
            { class: whole ? "rollback rollback-ok" : "rollback rollback-failed" },
            el("strong", {}, "Rollback: "),
            whole
              ? `${rolled.success_count} workload(s) put back; the namespace is as it was.`
              : `${rolled.success_count} put back, ${rolled.failed_count} NOT put back: ` +
                  "left partly changed, a person must look.",
          ),
        );
        const back = (result.rollback_results || []).map((r) => [
          ref(r),
          ` back to ${r.restored_replicas} \u2014 ${r.status}`,
          r.error ? `: ${r.error}` : "",
        ]);
        parts.push(list("rollback-list", back));
      } else if (status === 500) {
        parts.push(el("p", {}, "No rollback was needed: nothing had changed."));
      }
      if (data.holder) {
        const h = data.holder;
        const who = h.caller ? ` for ${h.caller}` : "";
        parts.push(el("p", {}, `Held by run ${h.run_id} (${h.operation}) since ${h.started}${who}.`));
      }
    }
    if (data.run_id) parts.push(el("p", { class: "muted run-id" }, `run ${data.run_id}`));
    return parts;
  }

  async function act(namespace, name) {
    const action = ACTIONS[name];
    const section = $(`section.ns[data-namespace="${CSS.escape(namespace)}"]`);
    const answer = $(".answer", section);
    section.querySelectorAll("button.act").forEach((b) => (b.disabled = true));
    answer.className = "answer answer-busy";
    answer.replaceChildren(el("p", {}, `${action.doing} ${namespace}\u2026`));
    let reply;
    try {
      reply = await api("POST", `${apiPath(namespace)}/${action.path}`, action.body);
    } catch (err) {
      if (err instanceof NeedToken) return;
      throw err;
    }
    const ok = reply.status === 200 && reply.data.success;
    answer.className = ok ? "answer answer-ok" : "answer answer-failed";
    answer.setAttribute("data-status", reply.status);
    answer.replaceChildren(...answerBody(reply.status, reply.data, name).filter(Boolean));
    await refresh(namespace, name);
  }

  // ------------------------------------------------------------------ views

  const view = () => $("#view");

  function problem(what, reply) {
    const said = reply.data.message || "no message";
    return el("p", { class: "problem", role: "alert" }, `${what}: HTTP ${reply.status}: ${said}`);
  }

  function stamp(at) {
    const here = Intl.DateTimeFormat().resolvedOptions().timeZone; // the reader's own clock
    $("#updated").textContent = `as of ${clock(at || new Date().toISOString(), here)}`;
  }

  async function fetchFleet() {
    const reply = await api("GET", "/api/namespaces");
    if (reply.status !== 200 || !Array.isArray(reply.data.namespaces)) return { reply, namespaces: null };
    return { reply, namespaces: reply.data.namespaces };
  }

  function summary(namespaces) {
    const counts = {};
    for (const ns of namespaces) counts[ns.state] = (counts[ns.state] || 0) + 1;
    const said = Object.keys(STATES)
      .filter((s) => counts[s])
      .map((s) => `${counts[s]} ${STATES[s].word.toLowerCase()}`);
    const count = `${namespaces.length} namespace${namespaces.length === 1 ? "" : "s"}`;
    return said.length ? `${count}: ${said.join(", ")}` : count;
  }

  function filterBox(onChange, value) {
    const input = el("input", {
      id: "filter",
      type: "search",
      placeholder: "name contains\u2026",
      autocomplete: "off",
      spellcheck: "false",
    });
    input.value = value;
    input.addEventListener("input", () => onChange(input.value.trim()));
    return el("div", { class: "filter" }, el("label", { for: "filter" }, "Filter"), input);
  }

  async function showFleet(known, knownReply) {
    const { reply, namespaces } = known ? { reply: knownReply, namespaces: known } : await fetchFleet();
    const filtered = $("#filter") ? $("#filter").value.trim() : "";
    if (!namespaces) {
      view().replaceChildren(problem("Could not list the namespaces", reply));
      return;
    }
    const drawing = performance.now();
    stamp(reply.data.at);
    const heading = el("h1", { class: "summary", id: "summary" }, summary(namespaces));
    const items = namespaces.map((ns) => item(ns, 2));
    const apply = (text) => {
      for (const node of items) node.hidden = text !== "" && !node.dataset.namespace.includes(text);
    };
    const none = "You may see no namespace: your token names none, or none exists.";
    const parts = [
      el("div", { class: "bar" }, heading, filterBox(apply, filtered)),
      namespaces.length ? null : el("p", {}, none),
      el("div", { class: "fleet" }, items),
    ];
    view().replaceChildren(...parts.filter(Boolean));
    apply(filtered);
    performance.measure("nsscale:draw", { start: drawing }); // what the list costs to build
  }

  async function showNamespace(namespace) {
    const [fleet, details] = await Promise.all([fetchFleet(), namespaceDetails(namespace)]);
    const parts = [el("p", {}, el("a", { href: "/" }, "\u2190 All namespaces"))];
    const ns = fleet.namespaces && fleet.namespaces.find((n) => n.namespace === namespace);
    if (ns) {
      stamp(fleet.reply.data.at);
      parts.push(item(ns, 1));
    } else {
      parts.push(el("h1", {}, namespace));
      const unseen = "Not in your list: it does not exist or your token may not see it.";
      parts.push(
        fleet.namespaces ? el("p", { class: "problem" }, unseen) : problem("Could not list the namespaces", fleet.reply),
      );
    }
    parts.push(el("h2", {}, "Workloads"), details.workloads, el("h2", {}, "History"), details.history);
    view().replaceChildren(...parts);
  }

  /** The namespace page's workloads (its status) and runs (its history), each in its box. */
  async function namespaceDetails(namespace) {
    const path = apiPath(namespace);
    const [status, history] = await Promise.all([api("GET", path), api("GET", `${path}/history`)]);
    const workloads = el("div", { id: "workloads" });
    workloads.append(
      status.status === 200 ? workloadsTable(status.data.workloads || []) : problem("Could not read its workloads", status),
    );
    const runs = el("div", { id: "history" });
    if (history.status === 200) {
      if (history.data.note) runs.append(el("p", { class: "muted" }, history.data.note));
      runs.append(historyTable(history.data.runs || []));
    } else runs.append(problem("Could not read its history", history));
    return { workloads, history: runs };
  }

  function table(caption, head, rows) {
    if (!rows.length) return el("p", { class: "muted" }, `No ${caption.toLowerCase()} recorded.`);
    return el(
      "div",
      { class: "table-wrap" },
      el(
        "table",
        { class: caption.toLowerCase() },
        el("caption", { class: "visually-hidden" }, caption),
        el("thead", {}, el("tr", {}, head.map((h) => el("th", { scope: "col" }, h)))),
        el(
          "tbody",
          {},
          rows.map((row) =>
            el(
              "tr",
              {},
              // data-label: a narrow screen shows each row as a card of labelled lines
              row.map((c, i) => {
                const cell = i === 0 ? { scope: "row", "data-label": head[i] } : { "data-label": head[i] };
                return el(i === 0 ? "th" : "td", cell, el("span", {}, c));
              }),
            ),
          ),
        ),
      ),
    );
  }

  /** What else sets the workload's replicas: its HPA (min-max), its GitOps owner. */
  function rivals(w) {
    const hpa = w.hpa ? `HPA ${w.hpa.name} (${w.hpa.min ?? "?"}-${w.hpa.max ?? "?"})` : "";
    const owner = w.gitops_owner ? `${w.gitops_owner.tool} ${w.gitops_owner.kind}/${w.gitops_owner.name}` : "";
    return [hpa, owner].filter(Boolean).join(", ");
  }

  function workloadsTable(workloads) {
    return table(
      "Workloads",
      ["Workload", "Replicas", "Ready", "Original", "HPA / owner"],
      workloads.map((w) => [
        `${w.type}/${w.name}`,
        String(w.replicas ?? "\u2014"),
        String(w.ready_replicas ?? "\u2014"),
        w.original_replicas === null || w.original_replicas === undefined ? "\u2014" : String(w.original_replicas),
        rivals(w) || "\u2014",
      ]),
    );
  }

  function historyTable(runs) {
    return table(
      "Runs",
      ["When", "Run", "Outcome", "By", "Changed"],
      runs.map((r) => {
        const when = r.time || r.at;
        const exit = r.exit_code !== undefined && r.exit_code !== null ? ` (exit ${r.exit_code})` : "";
        return [
          when ? el("time", { datetime: when, title: when }, `${clock(when, "UTC")} UTC (${relative(when)})`) : "\u2014",
          [r.operation || "", el("span", { class: "muted run-id" }, ` ${r.run_id || ""}`)],
          el("span", { class: `outcome outcome-${r.outcome}` }, `${words(r.outcome)}${exit}`),
          r.by || r.caller || r.user || "\u2014",
          [
            `${r.total_scaled ?? 0} scaled`,
            r.total_failed ? `, ${r.total_failed} failed` : "",
            r.rollback_performed ? `, rolled back ${r.rollback_success_count}` : "",
          ].join(""),
        ];
      }),
    );
  }

  /** A card drawn again from fresh data, in place: its answer kept, and the focus where it was
   * (or on the button just pressed). A card asking to confirm, or running, is left alone. */
  function renew(section, ns, pressed) {
    const body = $(".ns-body", section);
    if (!body) return;
    if (!pressed && ($(".confirm", section) || $("button.act[disabled]", section))) return;
    const focused = body.contains(document.activeElement) ? document.activeElement : null;
    const link = focused && focused.tagName === "A" ? "link" : null;
    const again = pressed || (focused && focused.dataset.action) || link;
    section.dataset.state = ns.state;
    const fresh = card(ns, $("h1.ns-name", section) ? 1 : 2);
    body.replaceWith(fresh);
    const button = again ? $(`button[data-action="${again}"]`, fresh) : null;
    const target = again === "link" ? $(".ns-name a", fresh) : button;
    if (target) target.focus();
  }

  /** The view brought up to date without losing what is on it (answers, focus, the filter):
   * after an action (`pressed` on `namespace`), on Refresh, and every REFRESH_MS. */
  async function refresh(namespace, pressed) {
    const { reply, namespaces } = await fetchFleet();
    if (!namespaces) {
      $("#updated").textContent = `refresh failed (HTTP ${reply.status}): ${reply.data.message || ""}`;
      $("#updated").className = "problem";
      document.querySelectorAll("button.act[disabled]").forEach((b) => (b.disabled = false));
      return;
    }
    $("#updated").className = "muted";
    const sections = [...document.querySelectorAll("section.ns")];
    const onFleet = !!$("#summary");
    const shown = sections.map((s) => s.dataset.namespace).join("\n");
    if (onFleet && shown !== namespaces.map((n) => n.namespace).join("\n")) {
      await showFleet(namespaces, reply); // namespaces came or went: the list again
      return;
    }
    stamp(reply.data.at);
    const byName = new Map(namespaces.map((n) => [n.namespace, n]));
    for (const section of sections) {
      const ns = byName.get(section.dataset.namespace);
      if (ns) renew(section, ns, section.dataset.namespace === namespace ? pressed : null);
    }
    if (onFleet) $("#summary").textContent = summary(namespaces);
    const match = pageNamespace();
    if (match) {
      const details = await namespaceDetails(match);
      $("#workloads").replaceWith(details.workloads);
      $("#history").replaceWith(details.history);
    }
  }

  function pageNamespace() {
    const match = /^\/namespaces\/([^/]+)$/.exec(location.pathname);
    return match ? decodeURIComponent(match[1]) : null;
  }

  /** Refresh, except while signed out, the tab is hidden, or the view is being drawn. */
  async function tick() {
    const drawing = view().getAttribute("aria-busy") === "true";
    if (!token() || document.hidden || !$("#login").hidden || drawing) return;
    try {
      await refresh(null, null);
    } catch (err) {
      if (!(err instanceof NeedToken)) throw err;
    }
  }

  async function start() {
    if (!token()) {
      showLogin("");
      return;
    }
    $("#tools").hidden = false;
    view().setAttribute("aria-busy", "true");
    try {
      const namespace = pageNamespace();
      if (namespace) await showNamespace(namespace);
      else await showFleet();
    } catch (err) {
      if (!(err instanceof NeedToken)) throw err;
    } finally {
      view().setAttribute("aria-busy", "false");
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("#login").addEventListener("submit", onLogin);
    $("#refresh").addEventListener("click", () => (view().childElementCount ? tick() : start()));
    $("#signout").addEventListener("click", signOut);
    start();
    setInterval(tick, REFRESH_MS);
  });
})();
