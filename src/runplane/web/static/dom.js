// Small DOM and formatting helpers shared by the views (no framework, no build step).

/** h("a.cls#id", {href, onclick, dataset...}, ...children) -> Element */
export function h(spec, attrs = {}, ...children) {
  const [, tag = "div", rest = ""] = spec.match(/^([a-z0-9]*)(.*)$/i);
  const el = document.createElement(tag || "div");
  for (const part of rest.match(/[.#][^.#]+/g) || []) {
    if (part[0] === ".") el.classList.add(part.slice(1));
    else el.id = part.slice(1);
  }
  if (attrs === null || typeof attrs !== "object" || attrs instanceof Node || Array.isArray(attrs)) {
    children.unshift(attrs);
    attrs = {};
  }
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "dataset") Object.assign(el.dataset, v);
    else if (k === "class") el.className = v;
    else if (k in el && typeof v !== "string") el[k] = v;
    else el.setAttribute(k, v === true ? "" : v);
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

/** Replace an element's children. */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** Set text only when it changed (keeps selections and avoids layout work). */
export function text(el, value) {
  const s = value === null || value === undefined ? "" : String(value);
  if (el.textContent !== s) el.textContent = s;
  return el;
}

export const esc = encodeURIComponent;

// ---------------------------------------------------------------- formatting

export function ms(v) {
  if (v === null || v === undefined || Number.isNaN(v)) return "–";
  if (v < 1000) return `${Math.round(v)} ms`;
  if (v < 60_000) return `${(v / 1000).toFixed(v < 10_000 ? 2 : 1)} s`;
  return duration(v / 1000);
}

export function duration(seconds) {
  if (seconds === null || seconds === undefined || Number.isNaN(seconds)) return "–";
  seconds = Math.max(0, Math.floor(seconds));
  const d = Math.floor(seconds / 86400), hh = Math.floor((seconds % 86400) / 3600);
  const mm = Math.floor((seconds % 3600) / 60), ss = seconds % 60;
  if (d) return `${d}d ${hh}h`;
  if (hh) return `${hh}h ${mm}m`;
  if (mm) return `${mm}m ${ss}s`;
  return `${ss}s`;
}

/** Seconds since an ISO time (or epoch seconds). */
export function since(t) {
  const at = toEpoch(t);
  return at === null ? null : Date.now() / 1000 - at;
}

export function toEpoch(t) {
  if (t === null || t === undefined || t === "") return null;
  if (typeof t === "number") return t > 1e12 ? t / 1000 : t;
  const v = Date.parse(t);
  return Number.isNaN(v) ? null : v / 1000;
}

export function when(t) {
  const at = toEpoch(t);
  if (at === null) return "–";
  const d = new Date(at * 1000);
  return d.toLocaleString(undefined, { hour12: false });
}

export function usd(v) {
  if (v === null || v === undefined) return "–";
  return `$${Number(v).toFixed(v >= 100 ? 0 : v >= 1 ? 2 : 3)}/hr`;
}

export function num(v) {
  return v === null || v === undefined ? "–" : Number(v).toLocaleString();
}

export function json(v) {
  return v === undefined ? "" : JSON.stringify(v, null, 2);
}

// Worker and job states -> pill colour classes.
const TONE = {
  RUNNING: "ok", IDLE: "info", INITIALIZING: "warn", THROTTLED: "warn", UNHEALTHY: "bad",
  PARKED: "muted", OUTDATED: "muted", EXITED: "muted",
  IN_QUEUE: "warn", IN_PROGRESS: "info", COMPLETED: "ok", FAILED: "bad", CANCELLED: "muted",
  TIMED_OUT: "bad",
};

export function pill(state, extra) {
  const s = String(state || "UNKNOWN");
  return h(`span.pill.${TONE[s.toUpperCase()] || "muted"}`, { dataset: { state: s } },
    s.replace(/_/g, " ").toLowerCase(), extra === undefined ? null : ` ${extra}`);
}

export const FINAL = new Set(["COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT"]);
