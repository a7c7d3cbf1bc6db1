// #/jobs/ID: input, output, stream, timings and the worker's log lines for this job.
import { api, ApiError } from "../api.js";
import { h, fill, text, esc, json, ms, when, pill, FINAL, toEpoch } from "../dom.js";

export function jobView(id) {
  const head = h("div.page-head.row", h("div", h("h1", "Job"), h("p.mono.small.muted", id)));
  const status = h("span#job-status");
  const facts = h("dl.facts#job-facts");
  const timeline = h("div.timeline#job-timeline");
  const input = h("pre.code#job-input", "…");
  const output = h("pre.code#job-output", "…");
  const outputTitle = h("h3", "Output");
  const streamList = h("ol.stream#job-stream");
  const streamCard = h("section.card", { hidden: true }, h("header.card-head", h("h3", "Stream")), streamList);
  const logs = h("pre.log#job-logs", "…");
  const logNote = h("span.muted.small");
  const missing = h("div.banner.bad", { hidden: true });
  let finalSeen = 0;

  const el = h("section.page#job-page", { dataset: { jobId: id } },
    h("div.crumbs", h("a", { href: "#/endpoints" }, "Endpoints"), " / ", h("span.crumb-ep"), h("span.mono", id)),
    head,
    missing,
    h("div.layout",
      h("div.main-col",
        h("section.card", h("header.card-head", h("h3", "Timings"), status), timeline, facts),
        h("div.two",
          h("section.card", h("header.card-head", h("h3", "Input")), input),
          h("section.card", h("header.card-head", outputTitle), output)),
        streamCard,
        h("section.card", h("header.card-head", h("h3", "Worker log for this job"), logNote), logs))));

  async function refresh() {
    if (finalSeen > 2) return; // a finished job no longer changes; its log has settled
    let job;
    try {
      job = await api(`/v1/jobs/${esc(id)}?includeInput=true`);
    } catch (e) {
      if (e instanceof ApiError && e.status === 404) {
        missing.hidden = false;
        text(missing, e.message === "no such route"
          ? "This server does not serve GET /v1/jobs/{id}." : e.message);
        return;
      }
      throw e;
    }
    missing.hidden = true;
    if (FINAL.has(job.status)) finalSeen += 1;
    fill(status, pill(job.status));
    const crumb = el.querySelector(".crumb-ep");
    if (job.endpointId) fill(crumb, h("a.mono", { href: `#/endpoints/${esc(job.endpointId)}` }, job.endpointId), " / ");

    fill(facts,
      fact("Endpoint", job.endpointId ? h("a.mono", { href: `#/endpoints/${esc(job.endpointId)}` }, job.endpointId) : "–"),
      fact("Worker", h("span.mono", job.workerId || "–")),
      fact("Created", when(job.createdAt)),
      fact("Started", when(job.startedAt)),
      fact("Completed", when(job.completedAt)),
      fact("Delay time", ms(job.delayTime)),
      fact("Execution time", ms(job.executionTime)),
      fact("Retries", String(job.retries ?? 0)),
      job.reason ? fact("Why it waits", h("span.reason", job.reason)) : null);
    drawTimeline(job);

    text(input, job.input === undefined ? "(not available)" : json(job.input));
    if (job.error !== undefined && job.error !== null) {
      text(outputTitle, "Error");
      text(output, typeof job.error === "string" ? job.error : json(job.error));
      output.classList.add("error");
    } else {
      text(outputTitle, "Output");
      text(output, job.output === undefined ? (FINAL.has(job.status) ? "(none)" : "(not yet)") : json(job.output));
      output.classList.remove("error");
    }
    const stream = job.stream || [];
    streamCard.hidden = stream.length === 0;
    fill(streamList, stream.map((s) => h("li", h("code", JSON.stringify(s.output !== undefined ? s.output : s)))));

    await workerLog(job);
  }

  async function workerLog(job) {
    if (!job.workerId) {
      text(logs, job.status === "IN_QUEUE" ? "(no worker has taken this job yet)" : "(no worker)");
      text(logNote, "");
      return;
    }
    let raw;
    try {
      raw = await api(`/v1/workers/${esc(job.workerId)}/logs?tail=1048576`, { raw: true });
    } catch (e) {
      text(logs, e instanceof ApiError && e.status === 404 ? "(the worker's log is no longer kept)" : e.message);
      return;
    }
    // The runpod SDK logs JSON lines {"requestId", "message", "level"} when RUNPOD_ENDPOINT_ID is set.
    const lines = [];
    for (const line of raw.split("\n")) {
      if (!line.includes(id)) continue;
      try {
        const rec = JSON.parse(line);
        if (rec && rec.requestId === id) lines.push(`${String(rec.level || "").padEnd(5)} ${rec.message}`);
      } catch { /* not a JSON log line */ }
    }
    text(logNote, `worker ${job.workerId} · ${lines.length} line${lines.length === 1 ? "" : "s"}`);
    text(logs, lines.length ? lines.join("\n") : "(no log lines carry this job's id yet)");
  }

  function drawTimeline(job) {
    const c = toEpoch(job.createdAt), s = toEpoch(job.startedAt), d = toEpoch(job.completedAt);
    const now = Date.now() / 1000;
    if (c === null) { fill(timeline); return; }
    const end = d ?? now;
    const total = Math.max(end - c, 0.001);
    const wait = ((s ?? end) - c) / total * 100;
    fill(timeline,
      h("div.tl-bar",
        h("span.tl-wait", { style: `width:${wait}%`, title: "in queue" }),
        s !== null ? h("span.tl-run", { style: `width:${100 - wait}%`, title: "executing" }) : null),
      h("div.tl-legend.small.muted",
        h("span", h("i.sw.wait"), `queued ${ms(job.delayTime ?? ((s ?? end) - c) * 1000)}`),
        s !== null ? h("span", h("i.sw.run"), `executing ${ms(job.executionTime ?? (end - s) * 1000)}`) : null));
  }

  return { el, refresh };
}

function fact(label, value) {
  return [h("dt", label), h("dd", value)];
}
