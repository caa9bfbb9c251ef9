// Lifeboat's web UI: hash-routed pages over the REST API. The session is
// an HttpOnly cookie holding a random session ID (never the token), set by
// POST /api/v1/login and revoked by /logout: scripts never hold the token
// after signing in, and it never appears in a URL.
"use strict";

const $ = (sel, el = document) => el.querySelector(sel);
const main = () => $("#main");
let timer = null;

// h builds an element: h("a", {href: "#/"}, "text", child…). Text is
// always text: nothing from the API is parsed as HTML.
function h(tag, attrs = {}, ...kids) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const k of kids.flat()) if (k !== null && k !== undefined && k !== false) el.append(k instanceof Node ? k : String(k));
  return el;
}

async function api(method, path, body) {
  const opts = { method, headers: {}, credentials: "same-origin" };
  // The server takes state-changing requests only as JSON (a page of
  // another site cannot send that without a preflight it never gets).
  if (method !== "GET") opts.headers["Content-Type"] = "application/json";
  if (body !== undefined) opts.body = JSON.stringify(body);
  const r = await fetch(path, opts);
  if (r.status === 401 && !path.endsWith("/login")) { location.hash = "#/login"; throw new Error("signed out"); }
  const text = await r.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = text; }
  if (!r.ok) throw new Error((data && data.error) || r.statusText);
  return data;
}

const fmtBytes = (n) => {
  if (n === undefined || n === null || n < 0) return "–";
  const u = ["B", "KiB", "MiB", "GiB", "TiB"]; let i = 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return (i ? n.toFixed(1) : n) + " " + u[i];
};
const fmtTime = (t) => t ? new Date(t).toLocaleString() : "–";
function fmtAge(t) {
  if (!t) return "never";
  const s = Math.max(0, (Date.now() - new Date(t).getTime()) / 1000);
  if (s < 90) return Math.round(s) + " s ago";
  if (s < 5400) return Math.round(s / 60) + " min ago";
  if (s < 172800) return Math.round(s / 3600) + " h ago";
  return Math.round(s / 86400) + " days ago";
}
const fmtMs = (ms) => ms === undefined || ms === null ? "–" : ms < 1000 ? ms + " ms" : (ms / 1000).toFixed(1) + " s";
const cell = (label, ...kids) => h("td", { "data-label": label }, ...kids);
const badge = (s) => h("span", { class: "badge " + s }, s);
const unitHref = (u) => "#/unit/" + encodeURIComponent(u);
const pointHref = (id, path) => "#/point/" + encodeURIComponent(id) + (path ? "?path=" + encodeURIComponent(path) : "");

// show replaces the page. A refresh keeps keyboard focus where it was:
// on the element with the same id or label in the new page.
function show(title, ...content) {
  document.title = title + " · Lifeboat";
  const m = main();
  const a = document.activeElement;
  const key = a && m.contains(a) && a !== m ? (a.id ? "#" + CSS.escape(a.id) : a.getAttribute("aria-label") ? `[aria-label="${CSS.escape(a.getAttribute("aria-label"))}"]` : null) : null;
  // replaceChildren would print a null as "null": pages leave out what
  // does not apply with null.
  m.replaceChildren(h("h1", {}, title), ...content.filter((c) => c !== null && c !== undefined && c !== false));
  if (key) { const again = $(key, m); if (again) again.focus({ preventScroll: true }); }
}

function fail(err) {
  if (String(err.message) === "signed out") return;
  main().append(h("p", { class: "error", role: "alert" }, "Error: " + err.message));
}

// Every page refreshes itself while shown.
function every(ms, f) {
  clearInterval(timer);
  timer = setInterval(() => f().catch(fail), ms);
}

async function banner() {
  const b = $("#banner");
  try {
    const jobs = await api("GET", "/api/v1/jobs");
    const day = Date.now() - 86400e3;
    const failed = jobs.filter((j) => j.state === "failed" && new Date(j.ended || j.queued).getTime() > day);
    if (!failed.length) { b.hidden = true; return; }
    b.replaceChildren(h("span", {}, failed.length + " job" + (failed.length > 1 ? "s" : "") + " failed in the last 24 h, the latest: " +
      (failed[0].unit || failed[0].kind) + " — " + failed[0].error + " "), h("a", { href: "#/job/" + failed[0].id }, "details"));
    b.hidden = false;
  } catch { b.hidden = true; }
}

// ---- pages ----

function login() {
  clearInterval(timer);
  $("#nav").hidden = true;
  $("#banner").hidden = true;
  const msg = h("p", { role: "alert", class: "error" });
  const input = h("input", { id: "token", type: "password", autocomplete: "current-password", required: true, size: 40 });
  const form = h("form", { class: "card", onsubmit: async (e) => {
    e.preventDefault();
    msg.textContent = "";
    try {
      await api("POST", "/api/v1/login", { token: input.value });
      input.value = "";
      location.hash = "#/";
    } catch (err) { msg.textContent = err.message === "wrong token" ? "That token is not right." : err.message; input.focus(); }
  } }, h("label", { for: "token" }, "API token"), input,
    h("p", { class: "muted" }, "It is in the daemon's token file (by default /var/lib/lifeboat/api.token)."),
    h("button", { type: "submit" }, "Sign in"), msg);
  show("Sign in", form);
  input.focus();
}

async function dashboard() {
  const [units, repo, engines] = await Promise.all([api("GET", "/api/v1/units"), api("GET", "/api/v1/repository"), api("GET", "/api/v1/engines")]);
  const rows = units.map((u) => {
    const p = u.policy || {};
    const policy = p.enabled ? [u.consistency, u.schedule || "no schedule", retention(p.retention)].filter(Boolean).join(" · ") : "lifeboat.enable=false";
    const btn = h("button", { type: "button", class: "secondary", disabled: !!u.running_job || !p.enabled,
      "aria-label": "Back up " + u.unit + " now", onclick: async (e) => {
        e.target.disabled = true;
        try { const j = await api("POST", "/api/v1/jobs", { kind: "backup", unit: u.unit }); location.hash = "#/job/" + j.id; }
        catch (err) { fail(err); e.target.disabled = false; }
      } }, u.running_job ? "Running…" : "Back up now");
    return h("tr", { "data-unit": u.unit },
      cell("Unit", h("a", { href: unitHref(u.unit) }, u.unit)),
      cell("Protection", badge(u.protection)),
      cell("Policy", h("span", {}, policy)),
      cell("Last success", h("span", { class: "age" + (u.overdue ? " overdue" : ""), title: fmtTime(u.last_success) }, fmtAge(u.last_success))),
      cell("Downtime", h("span", {}, u.last_success ? fmtMs(u.last_downtime_ms) : "–")),
      cell("Size", h("span", { title: u.last_success ? fmtBytes(u.last_bytes) + " added by the last backup" : "" }, u.last_success ? fmtBytes(u.last_size) : "–")),
      cell("Points", h("span", {}, u.points)),
      cell("Next run", h("span", {}, u.next_run ? fmtTime(u.next_run) : "–")),
      cell("", btn));
  });
  const check = repo.last_check ? (repo.last_check_ok ? "passed " : "FAILED ") + fmtAge(repo.last_check) : "never run";
  const offsite = repo.offsite ? (repo.last_replication ? "copied " + fmtAge(repo.last_replication) : "not copied yet") + (repo.last_replication_error ? " — last run failed: " + repo.last_replication_error : "") : "none configured";
  show("Units on this host",
    h("div", { class: "grid" },
      h("div", { class: "card stat" }, h("span", { class: "muted" }, "Repository"), h("b", {}, fmtBytes(repo.size_bytes)), repo.points + " points of " + repo.units + " units"),
      h("div", { class: "card stat" }, h("span", { class: "muted" }, "Check"), h("b", {}, check)),
      h("div", { class: "card stat" }, h("span", { class: "muted" }, "Offsite copy"), h("b", {}, repo.offsite || "–"), offsite)),
    ...engineCards(engines),
    h("table", { id: "units" }, h("thead", {}, h("tr", {}, ...["Unit", "Protection", "Policy", "Last success", "Downtime", "Size", "Points", "Next run", ""].map((t) => h("th", { scope: "col" }, t)))),
      ...groupByEngine(engines, units, rows)));
  banner();
}

// With many engines, each engine's health in a card of its own, and its
// units under its name; with one, the page is as it always was.
function engineCards(engines) {
  if (engines.length < 2) return [];
  return [h("div", { class: "grid", id: "engines" }, ...engines.map((e) =>
    h("div", { class: "card stat", "data-engine": e.name }, h("span", { class: "muted" }, "Engine " + e.name + " · " + e.host),
      h("b", { class: e.reachable ? "" : "overdue" }, e.reachable ? "reachable" : "unreachable"),
      [e.version ? "Docker " + e.version : "", e.units + " units", "discovered " + fmtAge(e.last_discovery), e.error || ""].filter(Boolean).join(" · "))))];
}

function groupByEngine(engines, units, rows) {
  if (engines.length < 2) return [h("tbody", {}, rows)];
  return engines.map((e) => h("tbody", { "data-engine": e.name },
    h("tr", { class: "engine" }, h("th", { colspan: 9, scope: "rowgroup" }, e.name + (e.reachable ? "" : " — unreachable"))),
    rows.filter((_, i) => units[i].engine === e.name)));
}

function retention(r) {
  if (!r) return "";
  const parts = Object.entries(r).filter(([, v]) => v).map(([k, v]) => k + "=" + v);
  return parts.length ? "keep " + parts.join(",") : "";
}

// proof is a point's last drill: "proven" with its recovery time, or the
// failure; nothing for a point never drilled.
function proof(p) {
  const d = p.last_drill;
  if (!d) return h("span", { class: "muted" }, "not drilled");
  return d.passed
    ? h("span", { class: "badge proven", title: "drilled " + fmtTime(d.time) }, "proven · RTO " + fmtMs(d.rto_ms))
    : h("span", { class: "badge failed", title: "drilled " + fmtTime(d.time) }, "drill failed");
}

// offsiteLock is until when a point's offsite copy cannot be removed, or
// that no locked copy holds it yet.
function offsiteLock(p) {
  if (!p.offsite_locked_until) return h("span", { class: "muted" }, "not locked offsite");
  return h("span", { class: "badge proven", "data-offsite-locked-until": p.offsite_locked_until,
    title: "its offsite copy cannot be removed before then" }, "locked until " + fmtTime(p.offsite_locked_until));
}

// suspicion is the anomaly guard's mark on a point, with a button that
// acknowledges it (retention then treats the point as any other).
function suspicion(p) {
  if (!p.suspect) return null;
  if (p.acked) return h("span", { class: "badge cancelled", title: (p.anomalies || []).join("; ") }, "acknowledged");
  return h("span", { class: "row" },
    h("span", { class: "badge suspect", title: (p.anomalies || []).join("; ") }, "suspect"),
    h("button", { type: "button", class: "secondary", "aria-label": "Acknowledge the anomaly of " + p.id, onclick: async (e) => {
      e.target.disabled = true;
      try { await api("POST", "/api/v1/points/" + encodeURIComponent(p.id) + "/ack"); route(); }
      catch (err) { fail(err); e.target.disabled = false; }
    } }, "Acknowledge"));
}

async function startJob(body) {
  const j = await api("POST", "/api/v1/jobs", body);
  location.hash = "#/job/" + j.id;
}

// fmtPhases lists a point's phases in the order a backup runs them;
// dumps and image archives are read during a pass, so they overlap it.
function fmtPhases(p) {
  const order = ["wait", "open", "plan", "images", "live_pass", "prestage", "freeze", "frozen_pass", "thaw", "upload", "snapshot_pass", "dumps", "store"];
  const ph = p.phases_ms || {};
  return Object.keys(ph).sort((a, b) => order.indexOf(a) - order.indexOf(b))
    .map((k) => k.replace("_", " ") + " " + fmtMs(ph[k])).join(", ");
}

async function unitPage(unit) {
  const points = await api("GET", "/api/v1/points?unit=" + encodeURIComponent(unit));
  const rows = points.map((p) => h("tr", { "data-point": p.id },
    cell("Time", h("a", { href: pointHref(p.id) }, fmtTime(p.time)), " ", suspicion(p)),
    cell("Proof", proof(p)),
    cell("Offsite", offsiteLock(p)),
    cell("Consistency", h("span", {}, p.consistency)),
    cell("Downtime", h("span", {}, fmtMs(p.downtime_ms))),
    cell("Files", h("span", {}, p.files)),
    cell("Size", h("span", {}, fmtBytes(p.bytes))),
    cell("Duration", h("span", { title: fmtPhases(p) }, fmtMs(p.duration_ms))),
    cell("Trigger", h("span", {}, p.trigger))));
  show(unit,
    h("div", { class: "row" },
      h("button", { type: "button", onclick: () => startJob({ kind: "backup", unit }).catch(fail) }, "Back up now"),
      h("button", { type: "button", class: "secondary", disabled: !points.length, onclick: () => startJob({ kind: "drill", unit }).catch(fail) }, "Drill now"),
      h("a", { href: "#/" }, "All units")),
    h("h2", {}, "Timeline"), timeline(points),
    h("h2", {}, "Backup duration and size"), chart(points),
    h("h2", {}, "Restore points"),
    points.length ? h("table", {}, h("thead", {}, h("tr", {}, ...["Time", "Proof", "Offsite", "Consistency", "Downtime", "Files", "Size", "Duration", "Trigger"].map((t) => h("th", { scope: "col" }, t)))), h("tbody", {}, rows))
      : h("p", { class: "muted" }, "No restore points yet."));
}

const NS = "http://www.w3.org/2000/svg";
function s(tag, attrs, ...kids) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  for (const k of kids) el.append(k instanceof Node ? k : String(k));
  return el;
}

// timeline draws the points on a time axis, coloured by consistency.
function timeline(points) {
  const W = 800, H = 90, pad = 30;
  const svg = s("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": points.length + " restore points on a time axis" });
  if (!points.length) return svg;
  const ts = points.map((p) => new Date(p.time).getTime());
  const lo = Math.min(...ts), hi = Math.max(...ts, lo + 1);
  const x = (t) => pad + (W - 2 * pad) * (t - lo) / (hi - lo);
  svg.append(s("line", { x1: pad, x2: W - pad, y1: 50, y2: 50, stroke: "#8c959f" }));
  const colour = { "dump+pause": "#8250df", pause: "#0b5fad", snapshot: "#1a7f37", stop: "#cf222e", none: "#9a6700", dump: "#bf3989" };
  points.forEach((p, i) => {
    const c = s("circle", { cx: x(ts[i]), cy: 50, r: 7, fill: colour[p.consistency] || "#6e7781" });
    c.append(s("title", {}, fmtTime(p.time) + " · " + p.consistency + " · downtime " + fmtMs(p.downtime_ms)));
    const a = s("a", { href: pointHref(p.id) }, c);
    svg.append(a);
  });
  svg.append(s("text", { x: pad, y: 80, "font-size": 12, fill: "#5d6b7a" }, fmtTime(lo)));
  svg.append(s("text", { x: W - pad, y: 80, "font-size": 12, fill: "#5d6b7a", "text-anchor": "end" }, fmtTime(hi)));
  return svg;
}

// chart: bars of backup duration, a line of the unit's size, oldest first.
function chart(points) {
  const W = 800, H = 180, pad = 34;
  const ps = [...points].reverse();
  const svg = s("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": "backup duration (bars) and size (line) over time" });
  if (!ps.length) return svg;
  const maxD = Math.max(...ps.map((p) => p.duration_ms || 0), 1), maxB = Math.max(...ps.map((p) => p.bytes || 0), 1);
  const bw = (W - 2 * pad) / ps.length;
  let path = "";
  ps.forEach((p, i) => {
    const bh = (H - 2 * pad) * (p.duration_ms || 0) / maxD;
    const r = s("rect", { x: pad + i * bw + bw * 0.15, y: H - pad - bh, width: bw * 0.7, height: bh, fill: "#9ec5fe" });
    r.append(s("title", {}, fmtTime(p.time) + ": " + fmtMs(p.duration_ms) + ", " + fmtBytes(p.bytes) + (p.phases_ms ? "\n" + fmtPhases(p) : "")));
    svg.append(r);
    const y = H - pad - (H - 2 * pad) * (p.bytes || 0) / maxB;
    path += (i ? " L " : "M ") + (pad + i * bw + bw / 2) + " " + y;
  });
  svg.append(s("path", { d: path, fill: "none", stroke: "#0b5fad", "stroke-width": 2 }));
  svg.append(s("text", { x: pad, y: 18, "font-size": 12, fill: "#5d6b7a" }, "bars: duration (max " + fmtMs(maxD) + ") · line: size (max " + fmtBytes(maxB) + ")"));
  return svg;
}

async function pointPage(id, path) {
  const [p, entries] = await Promise.all([api("GET", "/api/v1/points/" + encodeURIComponent(id)), api("GET", "/api/v1/points/" + encodeURIComponent(id) + "/files?path=" + encodeURIComponent(path || ""))]);
  const parts = (path || "").split("/").filter(Boolean);
  const crumbs = h("nav", { class: "crumbs", "aria-label": "Path" }, h("a", { href: pointHref(p.id) }, "/"),
    ...parts.map((part, i) => [h("span", {}, "›"), h("a", { href: pointHref(p.id, parts.slice(0, i + 1).join("/")) }, part)]));
  const viewer = h("div", { id: "viewer" });
  const rows = entries.map((e) => {
    const full = (path ? path + "/" : "") + e.name;
    const dl = "/api/v1/points/" + encodeURIComponent(p.id) + "/download?path=" + encodeURIComponent(full);
    const actions = e.type === "file" ? h("span", { class: "row" }, h("a", { href: dl, download: e.name, class: "button secondary", "aria-label": "Download " + e.name }, "Download"),
      e.size < 262144 && /\.(json|sql|txt|log|conf|ya?ml)$/.test(e.name) ? h("button", { type: "button", class: "secondary", "aria-label": "View " + e.name, onclick: async () => {
        const r = await fetch(dl, { credentials: "same-origin" });
        // Below admin the server masks secrets in configuration and
        // refuses file contents; show its reason rather than the JSON.
        let text = await r.text();
        if (!r.ok) { try { text = JSON.parse(text).error; } catch { /* as sent */ } }
        viewer.replaceChildren(h("h2", {}, e.name), h("pre", { tabindex: "0" }, text));
        viewer.scrollIntoView();
      } }, "View") : null) : "";
    return h("tr", {},
      cell("Name", e.type === "dir" ? h("a", { href: pointHref(p.id, full) }, e.name + "/") : h("span", {}, e.name)),
      cell("Size", h("span", {}, e.type === "dir" ? "" : fmtBytes(e.size))),
      cell("Modified", h("span", {}, fmtTime(e.mtime))),
      cell("", actions));
  });
  show(p.unit + " at " + fmtTime(p.time),
    h("p", { class: "muted" }, p.consistency + " · downtime " + fmtMs(p.downtime_ms) + " · " + p.files + " files, " + fmtBytes(p.bytes) + " · ID " + p.id),
    h("p", {}, "Offsite: ", offsiteLock(p)),
    h("div", { class: "row" }, h("a", { href: unitHref(p.unit) }, "Timeline of " + p.unit)),
    h("h2", {}, "Browse"), crumbs,
    h("table", { id: "files" }, h("thead", {}, h("tr", {}, ...["Name", "Size", "Modified", ""].map((t) => h("th", { scope: "col" }, t)))), h("tbody", {}, rows)),
    viewer,
    await restoreForm(p, path));
}

// restoreForm: what to bring back, a dry run, then the restore itself.
async function restoreForm(p, path) {
  let manifest = { containers: [], volumes: [] };
  try {
    const r = await fetch("/api/v1/points/" + encodeURIComponent(p.id) + "/download?path=lifeboat.json", { credentials: "same-origin" });
    if (r.ok) manifest = await r.json();
  } catch { /* an old point: offer what needs no manifest */ }
  // Restores into host directories are the admin role's: others are not
  // offered them (the server refuses them anyway).
  const { role } = await api("GET", "/api/v1/session");
  const what = h("select", { id: "what" },
    (manifest.containers || []).length ? h("option", { value: "unit" }, "The whole unit") : null,
    ...(manifest.containers || []).map((c) => h("option", { value: "container:" + c.name }, "Container " + c.name)),
    ...(manifest.volumes || []).map((v) => h("option", { value: "volume:" + v.name }, "Volume " + v.name)),
    role === "admin" ? h("option", { value: "path" }, "This folder or a file, to a directory") : null);
  const as = h("input", { id: "as", placeholder: "leave empty to restore in place" });
  const src = h("input", { id: "src", value: path || "" });
  const target = h("input", { id: "target", placeholder: "/srv/restored" });
  const force = h("input", { id: "force", type: "checkbox" });
  const out = h("div", { id: "plan", "aria-live": "polite" });
  const pathFields = h("div", {}, h("label", { for: "src" }, "Path in the point"), src, h("label", { for: "target" }, "Target directory on the host"), target);
  const asField = h("div", {}, h("label", { for: "as" }, "Restore as (a copy under a new name)"), as);
  // A copy beside the original needs other host ports (or none), and a
  // project's Compose files somewhere else: the same ports and compose_dir
  // the CLI's --ports and --compose-dir take.
  const ports = h("select", { id: "ports" },
    h("option", { value: "" }, "as they were"), h("option", { value: "none" }, "none published"), h("option", { value: "shift" }, "shifted by…"));
  const shift = h("input", { id: "shift", type: "number", min: "1", max: "65534", value: "1000", "aria-label": "Add this to every host port" });
  const composeDir = h("input", { id: "compose-dir", placeholder: "where they were" });
  const unitFields = h("div", {}, h("label", { for: "ports" }, "Host ports of recreated containers"), h("div", { class: "row" }, ports, shift),
    role === "admin" && manifest.compose ? h("div", {}, h("label", { for: "compose-dir" }, "Directory for the project's Compose files"), composeDir) : null);
  const sync = () => {
    const isPath = what.value === "path";
    pathFields.hidden = !isPath; asField.hidden = isPath;
    unitFields.hidden = !(what.value === "unit" || what.value.startsWith("container:"));
    shift.hidden = ports.value !== "shift";
  };
  ports.addEventListener("change", sync);
  what.addEventListener("change", sync);
  const request = () => {
    const r = { point: p.id, force: force.checked };
    const [kind, name] = what.value.split(/:(.*)/);
    if (kind === "container") r.container = name;
    if (kind === "volume") r.volume = name;
    if (kind === "path") { r.path = src.value; r.target = target.value; } else if (as.value) r.as = as.value;
    if (!unitFields.hidden) {
      if (ports.value === "none") r.ports = "none";
      if (ports.value === "shift") r.ports = "shift=" + shift.value;
      if (composeDir.value) r.compose_dir = composeDir.value;
    }
    return r;
  };
  const dry = h("button", { type: "button", class: "secondary", id: "dryrun", onclick: async () => {
    out.replaceChildren(h("p", { class: "muted" }, "Planning…"));
    try {
      const plan = await api("POST", "/api/v1/restore/plan", request());
      out.replaceChildren(h("ul", { class: "plan" },
        ...plan.create.map((c) => h("li", { class: "create" }, "create " + c)),
        ...(plan.replace || []).map((c) => h("li", { class: "replace" }, "replace " + c)),
        ...(plan.ports || []).map((c) => h("li", { class: "ports" }, c)),
        ...(plan.refused || []).map((c) => h("li", { class: "refused" }, "refused: " + c))),
        h("p", {}, plan.refused && plan.refused.length ? "This restore would be refused." : "Nothing is in the way."));
    } catch (err) { out.replaceChildren(h("p", { class: "error", role: "alert" }, err.message)); }
  } }, "Dry run");
  const run = h("button", { type: "button", id: "restore", onclick: async () => {
    try { const j = await api("POST", "/api/v1/jobs", { kind: "restore", restore: request() }); location.hash = "#/job/" + j.id; }
    catch (err) { out.replaceChildren(h("p", { class: "error", role: "alert" }, err.message)); }
  } }, "Restore");
  const form = h("section", { class: "card", "aria-labelledby": "restore-h" }, h("h2", { id: "restore-h" }, "Restore"),
    h("label", { for: "what" }, "What to bring back"), what, asField, unitFields, pathFields,
    h("label", {}, force, " Replace what exists (otherwise the restore refuses to overwrite)"),
    h("div", { class: "row" }, dry, run), out);
  sync();
  return form;
}

async function jobsPage() {
  const jobs = await api("GET", "/api/v1/jobs");
  const live = jobs.filter((j) => j.state === "running" || j.state === "queued");
  const past = jobs.filter((j) => !(j.state === "running" || j.state === "queued")).slice(0, 100);
  const row = (j) => h("tr", { "data-job": j.id },
    cell("Job", h("a", { href: "#/job/" + j.id }, j.kind + (j.unit ? " " + j.unit : ""))),
    cell("State", badge(j.state)),
    cell("Progress", progressOf(j)),
    cell("Started", h("span", {}, fmtTime(j.started || j.queued))),
    cell("Trigger", h("span", {}, j.trigger)),
    cell("", j.state === "running" || j.state === "queued" ? cancelButton(j) : h("span", { class: j.error ? "error" : "" }, j.error || (j.bytes ? fmtBytes(j.bytes) : ""))));
  const head = () => h("thead", {}, h("tr", {}, ...["Job", "State", "Progress", "Started", "Trigger", ""].map((t) => h("th", { scope: "col" }, t))));
  show("Jobs",
    h("h2", {}, "Running and queued"), live.length ? h("table", { id: "live" }, head(), h("tbody", {}, live.map(row))) : h("p", { class: "muted" }, "Nothing runs."),
    h("h2", {}, "History"), h("table", { id: "history" }, head(), h("tbody", {}, past.map(row))));
  banner();
}

function progressOf(j) {
  const p = j.progress;
  if (!p) return h("span", {}, j.state === "succeeded" && j.ended && j.started ? fmtMs(new Date(j.ended) - new Date(j.started)) : "");
  const total = p.bytes_total || 0, done = p.bytes_done || 0;
  return h("span", {}, h("progress", { max: total || 1, value: total ? Math.min(done, total) : 0, "aria-label": "progress" }),
    " " + fmtBytes(done) + (total ? " of " + fmtBytes(total) : "") + ", " + p.files_done + " files");
}

function cancelButton(j) {
  return h("button", { type: "button", class: "danger", "aria-label": "Cancel job " + j.id, onclick: async (e) => {
    e.target.disabled = true;
    try { await api("POST", "/api/v1/jobs/" + j.id + "/cancel"); } catch (err) { fail(err); }
  } }, "Cancel");
}

async function jobPage(id) {
  const j = await api("GET", "/api/v1/jobs/" + encodeURIComponent(id));
  const done = !(j.state === "running" || j.state === "queued");
  show((j.kind + " " + (j.unit || "")).trim(),
    h("p", {}, badge(j.state), " ", h("span", { class: "muted" }, "queued " + fmtTime(j.queued) + (j.ended ? " · ended " + fmtTime(j.ended) : ""))),
    j.state === "running" ? h("div", { class: "card" }, progressOf(j)) : null,
    j.waiting ? h("p", { class: "muted", role: "status" }, "Waiting for " + j.waiting) : null,
    j.error ? h("p", { class: "error", role: "alert" }, j.error) : null,
    j.point ? h("p", {}, "Restore point: ", h("a", { href: pointHref(j.point) }, j.point)) : null,
    j.bytes ? h("p", {}, "Bytes: " + fmtBytes(j.bytes) + (j.kind === "backup" ? " added · downtime " + fmtMs(j.downtime_ms) : "")) : null,
    !done ? cancelButton(j) : null,
    j.kind === "drill" && j.result ? drillResult(j.result) : null,
    h("h2", {}, "Log"), h("pre", { id: "log", tabindex: "0" }, (j.log || []).join("\n") || "(empty)"));
  if (done) clearInterval(timer);
}

// drillResult shows what a drill proved: its recovery time and each check
// with the end of its output.
function drillResult(r) {
  const rows = (r.checks || []).map((c) => h("tr", {},
    cell("Check", h("span", {}, c.name + (c.container ? " · " + c.container : ""))),
    cell("Result", badge(c.passed ? "succeeded" : "failed")),
    cell("Took", h("span", {}, fmtMs(c.duration_ms))),
    cell("Output", h("pre", { class: "small" }, c.output || ""))));
  return h("div", {},
    h("h2", {}, "Drill"),
    h("p", {}, r.passed ? h("span", { class: "badge proven" }, "proven") : h("span", { class: "badge failed" }, "failed"),
      " recovery time " + (r.rto_ms ? fmtMs(r.rto_ms) : "not reached")),
    h("table", { id: "checks" }, h("thead", {}, h("tr", {}, ...["Check", "Result", "Took", "Output"].map((t) => h("th", { scope: "col" }, t)))), h("tbody", {}, rows)));
}

// ---- routing ----

async function route() {
  clearInterval(timer);
  const hash = location.hash || "#/";
  const [path, query] = hash.slice(1).split("?");
  const params = new URLSearchParams(query || "");
  if (path === "/login") return login();
  $("#nav").hidden = false;
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  const page = {
    "": () => dashboard(),
    unit: () => unitPage(parts.slice(1).join("/")),
    point: () => pointPage(parts[1], params.get("path") || ""),
    jobs: () => jobsPage(),
    job: () => jobPage(parts[1]),
  }[parts[0] || ""];
  if (!page) return show("Not found", h("p", {}, h("a", { href: "#/" }, "Back to the dashboard")));
  try {
    await page();
    if (!main().contains(document.activeElement)) main().focus({ preventScroll: true });
    if (parts[0] === "" || parts[0] === undefined || parts[0] === "jobs") every(3000, page);
    if (parts[0] === "job") every(1000, page);
  } catch (err) { fail(err); }
}

window.addEventListener("hashchange", route);
window.addEventListener("DOMContentLoaded", () => {
  $("#logout").addEventListener("click", async () => { await api("POST", "/api/v1/logout"); location.hash = "#/login"; });
  route();
});
