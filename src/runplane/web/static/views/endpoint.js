// #/endpoints/ID: settings (editable), workers, queue, the reason jobs wait, and plots.
import { api, optional, ApiError } from "../api.js";
import { h, fill, text, esc, usd, num, pill, duration, since, ms, when, toEpoch } from "../dom.js";
import { endpointCharts } from "../charts.js";
import { workerCounts, costPerHour, hardware, kpi } from "./endpoints.js";
import { whatifPanel } from "./whatif.js";

// The settings a person edits here; the PATCH sends only the ones that changed.
const FIELDS = [
  { name: "name", label: "Name", type: "text" },
  { name: "workersMin", label: "Min workers", type: "int", help: "kept warm even when idle" },
  { name: "workersMax", label: "Max workers", type: "int" },
  { name: "idleTimeout", label: "Idle timeout", type: "int", unit: "s" },
  { name: "scalerType", label: "Scaler", type: "select", options: ["QUEUE_DELAY", "REQUEST_COUNT", "ADAPTIVE"] },
  { name: "scalerValue", label: "Scaler value", type: "int",
    help: "QUEUE_DELAY: seconds a job may wait; REQUEST_COUNT: jobs per worker; ADAPTIVE: queue-wait target (s)" },
  { name: "executionTimeoutMs", label: "Execution timeout", type: "int", unit: "ms" },
  { name: "flashboot", label: "FlashBoot", type: "bool", help: "park idle workers instead of stopping them" },
  { name: "gpuTypeIds", label: "GPU types", type: "list", only: "GPU", help: "priority order, comma-separated" },
  { name: "gpuCount", label: "GPUs per worker", type: "int", only: "GPU" },
  { name: "vcpuCount", label: "vCPUs per worker", type: "int", only: "CPU" },
];

const QUEUE_ROWS = 10; // queued jobs listed; the rest are counted

const WINDOWS = [[300, "5 min"], [900, "15 min"], [3600, "1 hour"], [6 * 3600, "6 hours"], [86400, "24 hours"]];

export function endpointView(id) {
  const charts = endpointCharts();
  let windowS = Number(sessionStorage.getItem("runplane.window")) || 900;
  let logWorker = null;
  let endpoint = null;

  const title = h("h1", id);
  const subtitle = h("p.muted.mono.small", id);
  const badges = h("div.badges");
  const reason = h("div.banner.warn#endpoint-reason", { hidden: true, role: "status" });
  const values = {
    inQueue: h("div.kpi-value", "–"), inProgress: h("div.kpi-value", "–"),
    completed: h("div.kpi-value", "–"), failed: h("div.kpi-value", "–"),
    workers: h("div.kpi-value", "–"), cost: h("div.kpi-value", "–"),
  };
  const workersSub = h("div.kpi-sub.small.muted");
  const windowSelect = h("select#stats-window", {
    onchange: () => { windowS = Number(windowSelect.value); sessionStorage.setItem("runplane.window", windowS); refresh(); },
  }, WINDOWS.map(([s, label]) => h("option", { value: s, selected: s === windowS }, label)));
  const statsNote = h("p.muted.small", { hidden: true });
  const workersBody = h("tbody");
  const workersEmpty = h("div.empty.small", { hidden: true }, "No workers: the endpoint is scaled to zero.");
  const logTitle = h("h3");
  const logPre = h("pre.log#worker-log");
  const logCard = h("section.card.log-card", { hidden: true },
    h("header.card-head", logTitle, h("button.ghost.small", { type: "button", onclick: () => { logWorker = null; logCard.hidden = true; } }, "Close")),
    logPre);
  const queueBody = h("tbody");
  const queueEmpty = h("div.empty.small", "Queue is empty.");
  const recentBody = h("tbody");
  const recentEmpty = h("div.empty.small", "No finished jobs yet.");
  const form = settingsForm(id, (saved) => { endpoint = { ...endpoint, ...saved }; render(); });

  const el = h("section.page#endpoint-page", { dataset: { endpointId: id } },
    h("div.crumbs", h("a", { href: "#/endpoints" }, "Endpoints"), " / ", h("span.mono", id)),
    h("div.page-head.row", h("div", title, subtitle), badges),
    reason,
    h("div.kpis", { hidden: true },
      kpi("In queue", values.inQueue), kpi("In progress", values.inProgress),
      kpi("Completed", values.completed), kpi("Failed", values.failed),
      kpi("Workers", values.workers, workersSub), kpi("Cost", values.cost)),
    h("div.layout", { hidden: true },
      h("div.main-col",
        h("div.section-head", h("h2", "Metrics"), h("label.inline.small.muted", "Window ", windowSelect)),
        statsNote,
        h("div.charts", charts.map((c) => c.el)),
        h("div.section-head", h("h2", "Workers")),
        h("div.card.table-card",
          h("table.table#workers-table",
            h("thead", h("tr", ["Worker", "State", "Machine", "GPU", "Uptime", "Current job", "Job loop", "Cost", ""].map((c) => h("th", c)))),
            workersBody),
          workersEmpty),
        logCard,
        h("div.section-head", h("h2", "Queue")),
        h("div.card.table-card",
          h("table.table#queue-table",
            h("thead", h("tr", ["Job", "Status", "Waiting / running", "Worker", "Retries", "Why it waits"].map((c) => h("th", c)))),
            queueBody),
          queueEmpty),
        h("div.section-head", h("h2", "Recent jobs")),
        h("div.card.table-card",
          h("table.table#recent-table",
            h("thead", h("tr", ["Job", "Status", "Delay", "Execution", "Worker", "Finished"].map((c) => h("th", c)))),
            recentBody),
          recentEmpty)),
      h("aside.side-col", form.el, whatifPanel(id))));

  function render() {
    if (!endpoint) return;
    text(title, endpoint.name);
    fill(badges,
      h("span.badge", hardware(endpoint)),
      h("span.badge", `v${endpoint.version}`),
      endpoint.template ? h("span.badge", { title: endpoint.template.imageName }, endpoint.template.name) : null);
    form.load(endpoint);
  }

  async function refresh() {
    const base = `/v1/endpoints/${esc(id)}`;
    const [ep, health, stats, queued, running, completed, failed] = await Promise.all([
      api(`${base}?includeWorkers=true&includeTemplate=true`),
      api(`/v2/${esc(id)}/health`).catch(() => null),
      optional(`${base}/stats?window=${windowS}`),
      optional(`${base}/jobs?status=IN_QUEUE&limit=50`),
      optional(`${base}/jobs?status=IN_PROGRESS&limit=50`),
      optional(`${base}/jobs?status=COMPLETED&limit=10`),
      optional(`${base}/jobs?status=FAILED&limit=5`),
    ]);
    endpoint = ep;
    render();
    // Shown once there is an endpoint to show (an unknown id leaves only the error).
    for (const part of el.querySelectorAll(":scope > .kpis, :scope > .layout")) part.hidden = false;

    const jobs = (health && health.jobs) || {};
    const counts = workerCounts(ep, health);
    text(values.inQueue, num(jobs.inQueue ?? 0));
    text(values.inProgress, num(jobs.inProgress ?? 0));
    text(values.completed, num(jobs.completed ?? 0));
    text(values.failed, num(jobs.failed ?? 0));
    text(values.workers, num(Object.values(counts).reduce((a, b) => a + b, 0)));
    text(workersSub, ["running", "idle", "initializing", "throttled", "unhealthy", "parked"]
      .filter((s) => counts[s]).map((s) => `${counts[s]} ${s}`).join(" · ") || "scaled to zero");
    text(values.cost, usd(costPerHour(ep)));

    const why = ep.reason || (health && health.reason);
    reason.hidden = !why;
    if (why) fill(reason, h("strong", "Jobs wait: "), why);

    // Plots.
    if (stats && Array.isArray(stats.points)) {
      statsNote.hidden = true;
      // Nothing to plot from before the endpoint existed (but always a few buckets).
      const pts = stats.points;
      const step = stats.bucketSeconds || 10;
      const last = pts.length ? pts[pts.length - 1].t : 0;
      const from = Math.min((toEpoch(ep.createdAt) ?? 0) - step, last - 8 * step);
      const shown = pts.filter((pt) => pt.t >= from);
      for (const c of charts) c.update(shown);
    } else {
      statsNote.hidden = false;
      text(statsNote, "This server does not serve endpoint stats (GET /v1/endpoints/{id}/stats).");
    }

    // Workers, with the job each one runs.
    const jobOf = new Map();
    for (const j of (running && running.jobs) || []) if (j.workerId) jobOf.set(j.workerId, j.id);
    const workers = ep.workers || [];
    workersEmpty.hidden = workers.length > 0;
    fill(workersBody, workers.map((w) => {
      const job = jobOf.get(w.id);
      const gpu = w.gpu ? `${w.gpu.count}× ${w.gpu.displayName}` : `${w.vcpuCount ?? "?"} vCPU · ${w.memoryInGb ?? "?"} GB`;
      const machine = w.machine ? `${w.machineId} · ${w.machine.dataCenterId}` : (w.machineId || "–");
      return h("tr", { dataset: { workerId: w.id, state: w.workerStatus } },
        h("td.mono", w.id),
        h("td", pill(w.workerStatus)),
        h("td.small", machine),
        h("td.small", gpu),
        h("td", duration(since(w.lastStartedAt))),
        h("td", job ? h("a.mono.small", { href: `#/jobs/${esc(job)}` }, short(job)) : h("span.muted", "–")),
        h("td.small.job-loop", { title: w.accelerator || "not known before its first job-take" },
          w.accelerator ? (w.accelerator.startsWith("on") ? "accelerated" : "SDK's own") : "–"),
        h("td.mono.small", usd(w.costPerHr)),
        h("td", h("button.ghost.small", { type: "button", onclick: () => { logWorker = w.id; showLog(); } }, "Logs")));
    }));
    if (logWorker) showLog();

    // Queue: waiting jobs first (oldest first), then running ones.
    const waiting = ((queued && queued.jobs) || []).slice().sort((a, b) => (a.createdAt < b.createdAt ? -1 : 1));
    const inflight = (running && running.jobs) || [];
    const waitingTotal = jobs.inQueue ?? waiting.length;
    const more = waitingTotal - Math.min(waiting.length, QUEUE_ROWS);
    waiting.splice(QUEUE_ROWS);
    queueEmpty.hidden = waiting.length + inflight.length > 0;
    text(queueEmpty, queued === null ? "This server does not list jobs (GET /v1/endpoints/{id}/jobs)." : "Queue is empty.");
    fill(queueBody, [...inflight, ...waiting].map((j) => h("tr", { dataset: { jobId: j.id } },
      h("td", h("a.mono.small", { href: `#/jobs/${esc(j.id)}` }, short(j.id))),
      h("td", pill(j.status)),
      h("td", duration(j.status === "IN_QUEUE" ? since(j.createdAt) : runningFor(j))),
      h("td.mono.small", j.workerId || "–"),
      h("td", num(j.retries || 0)),
      h("td.small", j.reason ? h("span.reason", j.reason) : (j.status === "IN_QUEUE" && why ? h("span.reason", why) : "–")))),
      more > 0 ? h("tr.more", h("td.muted.small", { colspan: 6 }, `… and ${more} more queued`)) : null);

    // Recent finished jobs.
    const done = [...((completed && completed.jobs) || []), ...((failed && failed.jobs) || [])]
      .sort((a, b) => (a.createdAt < b.createdAt ? 1 : -1)).slice(0, 12);
    recentEmpty.hidden = done.length > 0;
    fill(recentBody, done.map((j) => h("tr", { dataset: { jobId: j.id } },
      h("td", h("a.mono.small", { href: `#/jobs/${esc(j.id)}` }, short(j.id))),
      h("td", pill(j.status)),
      h("td", ms(j.delayTime)),
      h("td", ms(j.executionTime)),
      h("td.mono.small", j.workerId || "–"),
      h("td.small", when(j.completedAt || finishedAt(j))))));
  }

  async function showLog() {
    const wid = logWorker;
    logCard.hidden = false;
    text(logTitle, `Log of worker ${wid}`);
    try {
      const log = await api(`/v1/workers/${esc(wid)}/logs?tail=16384`, { raw: true });
      if (wid !== logWorker) return;
      const stick = logPre.scrollTop + logPre.clientHeight >= logPre.scrollHeight - 4;
      text(logPre, log || "(empty)");
      if (stick) logPre.scrollTop = logPre.scrollHeight;
    } catch (e) {
      text(logPre, e.message);
    }
  }

  return {
    el, refresh,
    destroy() { for (const c of charts) c.destroy(); },
  };
}

// Job list entries carry createdAt, delayTime and executionTime (ms): derive the rest.
function runningFor(j) {
  if (j.startedAt) return since(j.startedAt);
  const age = since(j.createdAt);
  return age === null ? null : age - (j.delayTime || 0) / 1000;
}

function finishedAt(j) {
  const c = toEpoch(j.createdAt);
  return c === null ? null : c + ((j.delayTime || 0) + (j.executionTime || 0)) / 1000;
}

function short(jobId) {
  return jobId.length > 14 ? `${jobId.slice(0, 8)}…${jobId.slice(-4)}` : jobId;
}

// ------------------------------------------------------------------ settings form

function settingsForm(id, onSaved) {
  const inputs = {};
  const errors = {};
  const rows = {};
  let current = null;
  let dirty = false;

  const status = h("div.form-status#settings-status", { role: "status" });
  const formError = h("div.field-error#settings-error", { role: "alert" });
  const save = h("button.primary#settings-save", { type: "submit" }, "Save");
  const discard = h("button.ghost", { type: "button", onclick: () => { dirty = false; clearErrors(); load(current, true); text(status, ""); } }, "Discard");

  for (const f of FIELDS) {
    let input;
    if (f.type === "select") {
      input = h("select", { name: f.name }, f.options.map((o) => h("option", { value: o }, o)));
    } else if (f.type === "bool") {
      input = h("input", { type: "checkbox", name: f.name });
    } else {
      input = h("input", { type: "text", name: f.name, autocomplete: "off", spellcheck: "false",
        inputmode: f.type === "int" ? "numeric" : undefined });
    }
    input.id = `field-${f.name}`;
    inputs[f.name] = input;
    errors[f.name] = h("div.field-error", { id: `error-${f.name}`, role: "alert" });
    rows[f.name] = h(`div.field${f.type === "bool" ? ".check" : ""}`, { dataset: { field: f.name } },
      h("label", { for: input.id }, f.label, f.unit ? h("span.muted", ` (${f.unit})`) : null),
      f.unit ? h("div.with-unit", input) : input,
      f.help ? h("div.help", f.help) : null,
      errors[f.name]);
  }

  const form = h("form.card.settings#settings-form", {
    novalidate: true,
    oninput: () => { dirty = true; text(status, "Unsaved changes"); status.className = "form-status pending"; },
    onsubmit: async (ev) => {
      ev.preventDefault();
      clearErrors();
      const body = changes();
      if (!Object.keys(body).length) {
        text(status, "Nothing to save");
        status.className = "form-status";
        return;
      }
      save.disabled = true;
      text(status, "Saving…");
      try {
        const saved = await api(`/v1/endpoints/${esc(id)}`, { method: "PATCH", body });
        dirty = false;
        current = saved;
        load(saved, true);
        text(status, `Saved · version ${saved.version}`);
        status.className = "form-status ok";
        onSaved(saved);
      } catch (e) {
        // Keep what the person typed; put the server's words next to the field they concern.
        const field = e instanceof ApiError && e.field ? e.field.replace(/[[.].*$/, "") : null;
        if (field && errors[field]) {
          text(errors[field], e.message);
          inputs[field].classList.add("invalid");
          inputs[field].setAttribute("aria-invalid", "true");
          inputs[field].focus();
        } else {
          text(formError, e.message);
        }
        text(status, "Not saved");
        status.className = "form-status bad";
      } finally {
        save.disabled = false;
      }
    },
  },
    h("header.card-head", h("h3", "Settings"), status),
    Object.values(rows),
    formError,
    h("div.actions", discard, save));

  function clearErrors() {
    text(formError, "");
    for (const f of FIELDS) {
      text(errors[f.name], "");
      inputs[f.name].classList.remove("invalid");
      inputs[f.name].removeAttribute("aria-invalid");
    }
  }

  function value(f) {
    const input = inputs[f.name];
    if (f.type === "bool") return input.checked;
    const raw = input.value;
    if (f.type === "int") return /^\s*-?\d+\s*$/.test(raw) ? Number(raw) : raw; // the server judges the rest
    if (f.type === "list") return raw.split(",").map((s) => s.trim()).filter(Boolean);
    return raw;
  }

  function changes() {
    const out = {};
    for (const f of FIELDS) {
      if (rows[f.name].hidden) continue;
      const v = value(f);
      if (JSON.stringify(v) !== JSON.stringify(current[f.name])) out[f.name] = v;
    }
    return out;
  }

  /** Show the server's settings, unless the person is in the middle of editing them. */
  function load(ep, force = false) {
    if (!ep) return;
    current = ep;
    if (dirty && !force) return;
    for (const f of FIELDS) {
      rows[f.name].hidden = Boolean(f.only && f.only !== ep.computeType);
      const input = inputs[f.name];
      const v = ep[f.name];
      if (f.type === "bool") input.checked = Boolean(v);
      else if (f.type === "list") input.value = (v || []).join(", ");
      else input.value = v ?? "";
    }
  }

  return { el: form, load };
}
