// #/endpoints: every endpoint with its queue depth, workers by state and cost per hour.
import { api } from "../api.js";
import { h, fill, text, esc, usd, num, pill } from "../dom.js";

const STATES = ["running", "idle", "initializing", "throttled", "unhealthy", "parked"];

/** Worker counts by state: the controller's (health) where known, else the Pod list's. */
export function workerCounts(ep, health) {
  const counts = Object.fromEntries(STATES.map((s) => [s, 0]));
  for (const w of ep.workers || []) {
    const s = String(w.workerStatus || "").toLowerCase();
    if (s in counts) counts[s] += 1;
  }
  if (health && health.workers) {
    for (const [k, v] of Object.entries(health.workers)) if (k in counts) counts[k] = v;
  }
  return counts;
}

/** USD per hour of the workers that are billed now (parked and throttled ones are not). */
export function costPerHour(ep) {
  return (ep.workers || [])
    .filter((w) => !["PARKED", "THROTTLED", "EXITED"].includes(w.workerStatus))
    .reduce((sum, w) => sum + (Number(w.costPerHr) || 0), 0);
}

export function hardware(ep) {
  if (ep.computeType === "CPU") return `CPU · ${ep.vcpuCount} vCPU`;
  const types = ep.gpuTypeIds || [];
  const first = types[0] ? types[0].replace(/^NVIDIA /, "") : "any GPU";
  return `${ep.gpuCount}× ${first}${types.length > 1 ? ` +${types.length - 1}` : ""}`;
}

export function endpointsView() {
  const tiles = {
    endpoints: h("div.kpi-value", "–"), workers: h("div.kpi-value", "–"),
    queue: h("div.kpi-value", "–"), cost: h("div.kpi-value", "–"),
  };
  const body = h("tbody");
  const empty = h("div.empty", { hidden: true },
    h("p", "No endpoints yet."),
    h("p.muted.small", "Create one with ", h("code", "runplane endpoints create"),
      " or POST /v1/endpoints; it appears here within seconds."));
  const el = h("section.page#endpoints-page",
    h("div.page-head", h("h1", "Endpoints"),
      h("p.muted", "Queue depth, workers by state and cost, refreshed live.")),
    h("div.kpis",
      kpi("Endpoints", tiles.endpoints), kpi("Workers running", tiles.workers),
      kpi("Jobs in queue", tiles.queue), kpi("Cost", tiles.cost)),
    h("div.card.table-card",
      h("table.table#endpoints-table",
        h("thead", h("tr", ["Endpoint", "Hardware", "Workers", "Queue", "Scaling", "Cost", "Status"]
          .map((c) => h("th", c)))),
        body),
      empty));

  async function refresh() {
    const eps = await api("/v1/endpoints?includeWorkers=true");
    const healths = await Promise.all(eps.map((e) =>
      api(`/v2/${esc(e.id)}/health`).catch(() => null)));
    let running = 0, queued = 0, cost = 0;
    const rows = eps.map((ep, i) => {
      const health = healths[i];
      const counts = workerCounts(ep, health);
      const jobs = (health && health.jobs) || {};
      const c = costPerHour(ep);
      running += counts.running;
      queued += jobs.inQueue || 0;
      cost += c;
      const reason = ep.reason || (health && health.reason);
      return h("tr", { dataset: { endpointId: ep.id } },
        h("td", h("a.strong", { href: `#/endpoints/${esc(ep.id)}` }, ep.name),
          h("div.mono.small.muted", ep.id)),
        h("td", hardware(ep)),
        h("td.workers-cell", STATES.filter((s) => counts[s]).map((s) => pill(s.toUpperCase(), counts[s])),
          STATES.every((s) => !counts[s]) ? h("span.muted", "none") : null),
        h("td", h("span.queue-depth", { dataset: { inQueue: jobs.inQueue || 0 } },
          num(jobs.inQueue || 0)), h("span.muted", " queued"),
          jobs.inProgress ? h("div.small.muted", `${jobs.inProgress} in progress`) : null),
        h("td", `${ep.workersMin}–${ep.workersMax}`,
          h("div.small.muted", `${ep.scalerType === "QUEUE_DELAY" ? "queue delay" : "request count"} ${ep.scalerValue}`)),
        h("td.mono", usd(c)),
        h("td", reason ? h("span.reason", { title: reason }, reason) : h("span.ok-text", "ready")));
    });
    fill(body, rows);
    empty.hidden = eps.length > 0;
    text(tiles.endpoints, num(eps.length));
    text(tiles.workers, num(running));
    text(tiles.queue, num(queued));
    text(tiles.cost, usd(cost));
  }

  return { el, refresh };
}

export function kpi(label, value, extra) {
  return h("div.kpi", h("div.kpi-label", label), value, extra || null);
}
