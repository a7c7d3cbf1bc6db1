// #/machines (admin): each machine with its capacity and who holds its GPUs.
import { api, ApiError } from "../api.js";
import { h, fill, num } from "../dom.js";

export function machinesView() {
  const list = h("div.machines#machines-list");
  const note = h("div.banner.bad", { hidden: true });
  const el = h("section.page#machines-page",
    h("div.page-head", h("h1", "Machines"), h("p.muted", "Where workers and pods run, and what is free.")),
    note, list);

  async function refresh() {
    let machines;
    try {
      machines = await api("/v1/machines");
    } catch (e) {
      if (e instanceof ApiError && e.status === 403) {
        note.hidden = false;
        note.textContent = `${e.message}. Log in with an admin key to see machines.`;
        fill(list);
        return;
      }
      throw e;
    }
    note.hidden = true;
    fill(list, machines.length ? machines.map(card) : h("div.empty", "No machines registered."));
  }

  return { el, refresh };
}

function card(m) {
  const c = m.capacity || {};
  const memTotal = m.memoryInGb || 0;
  return h("section.card.machine", { dataset: { machineId: m.id } },
    h("header.card-head",
      h("div", h("h3", m.name || m.id), h("div.mono.small.muted", `${m.id} · ${m.provider} · ${m.dataCenterId}`)),
      h("div.badges",
        m.secureCloud ? h("span.badge", "secure cloud") : h("span.badge", "community"),
        m.cudaVersion ? h("span.badge", `CUDA ${m.cudaVersion}`) : null)),
    h("div.meters",
      meter("GPUs", c.gpusUsed, c.gpusTotal, `${num(c.gpusFree)} free`),
      meter("vCPUs", c.vcpusUsed, c.vcpusOffered, `${m.cpuCount} cores · ${m.cpuTypeId || "CPU"}`),
      meter("Memory", c.memoryInGbUsed, memTotal, "GB")),
    h("dl.facts.compact",
      h("dt", "Workers"), h("dd", num(c.workers)),
      h("dt", "Pods"), h("dd", num(c.pods)),
      h("dt", "Disk"), h("dd", `${num(m.diskInGb)} GB`),
      h("dt", "Price"), h("dd", `$${m.costPerGpuHr}/GPU·hr · $${m.costPerVcpuHr}/vCPU·hr`)),
    m.gpus && m.gpus.length
      ? h("table.table.gpus",
        h("thead", h("tr", ["#", "GPU", "Memory", "CUDA", "Held by"].map((t) => h("th", t)))),
        h("tbody", m.gpus.map((g) => h("tr",
          h("td", g.index), h("td", g.gpuTypeId, g.declared ? h("span.muted.small", " (declared)") : null),
          h("td", `${g.memoryInGb} GB`), h("td", g.cudaVersion || "–"),
          h("td.small", g.usedBy ? h("span.mono", g.usedBy) : h("span.ok-text", "free"))))))
      : h("p.muted.small", "No GPUs on this machine."));
}

function meter(label, used, total, extra) {
  used = Number(used) || 0;
  total = Number(total) || 0;
  const pct = total ? Math.min(100, (used / total) * 100) : 0;
  const tone = pct > 90 ? "bad" : pct > 70 ? "warn" : "ok";
  return h("div.meter", { dataset: { meter: label.toLowerCase() } },
    h("div.meter-head", h("span", label),
      h("span.mono", `${+used.toFixed(1)} / ${+total.toFixed(1)}`), h("span.muted.small", extra)),
    h("div.meter-bar", h(`span.${tone}`, { style: `width:${pct}%` })));
}
