// What-if autoscaling on the endpoint page: the newest hour of jobs replayed through the
// autoscaler with the current settings and the cheapest ones meeting a queue-wait target
// (GET /v1/endpoints/{id}/whatif, docs/autoscaling.md). Run on demand: it takes seconds.
import { api, ApiError } from "../api.js";
import { h, fill, text, esc, usd, num } from "../dom.js";

const ROWS = [
  ["Cost", (o) => usd(o.costUsd)],
  ["GPU-seconds", (o) => num(Math.round(o.gpuSeconds))],
  ["Cold starts", (o) => num(o.coldStarts)],
  ["Queue wait p50", (o) => `${o.delayP50S.toFixed(2)} s`],
  ["Queue wait p95", (o) => `${o.delayP95S.toFixed(2)} s`],
  ["Worst wait", (o) => `${o.delayWorstS.toFixed(1)} s`],
  ["Peak workers", (o) => num(o.peakWorkers)],
];

function settingsText(s) {
  return `${s.scalerType} ${s.scalerValue}, idle ${s.idleTimeout}s, min ${s.workersMin}, ` +
    `max ${s.workersMax}${s.flashboot ? "" : ", no FlashBoot"}`;
}

export function whatifPanel(id) {
  const target = h("input#whatif-target", { type: "number", min: "0.1", step: "0.5", value: "10" });
  const note = h("p.small.muted#whatif-note", "Replays this endpoint's newest jobs (up to the last hour) through the autoscaler.");
  const body = h("div#whatif-result");
  const button = h("button.small#whatif-run", { type: "button", onclick: run }, "Run what-if");

  async function run() {
    button.disabled = true;
    text(note, "Simulating…");
    fill(body);
    try {
      const r = await api(`/v1/endpoints/${esc(id)}/whatif?window=86400&target=${Number(target.value) || 10}`);
      if (!r.current) {
        text(note, "No finished jobs in the last hour: nothing to replay.");
        return;
      }
      const partial = r.candidatesTried < r.candidates
        ? ` ${num(r.candidatesTried)} of ${num(r.candidates)} settings tried within the replay's budget.` : "";
      text(note, `${num(r.jobs)} jobs of the last ${num(Math.round(r.replayedS / 60))} min; cold start ${r.coldStart}` +
        (r.coldStartMeasured ? "" : " (assumed: none measured here yet)") + "." + partial);
      const best = r.suggested;
      fill(body,
        h("table.table.small#whatif-table",
          h("thead", h("tr", h("th", ""), h("th", "Current"), h("th", "Suggested"))),
          h("tbody", ROWS.map(([label, fmt]) => h("tr", h("td", label), h("td", fmt(r.current)),
            h("td", best ? fmt(best) : "–"))))),
        h("p.small#whatif-suggestion", best
          ? `Suggested: ${settingsText(r.suggestedSettings)}`
          : `No swept setting keeps the p95 wait within ${r.targetS} s.`));
    } catch (err) {
      text(note, err instanceof ApiError ? err.message : String(err));
    } finally {
      button.disabled = false;
    }
  }

  return h("section.card#whatif",
    h("header.card-head", h("h3", "What-if (last hour)")),
    h("label.inline.small", "p95 wait target (s) ", target), " ", button, note, body);
}
