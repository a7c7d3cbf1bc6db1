// Time-series cards over the endpoint stats, drawn with the vendored uPlot.
import uPlot from "./vendor/uPlot.esm.js";
import { h, ms } from "./dom.js";

export const COLORS = {
  violet: "#8b6cff", blue: "#4c9dff", cyan: "#22c3d6", green: "#34c77b", amber: "#f2a93b",
  red: "#f0596a", grey: "#8b93a7", pink: "#e86bd3",
};

const AXIS = {
  stroke: "#8b93a7",
  grid: { stroke: "rgba(139,147,167,0.14)", width: 1 },
  ticks: { stroke: "rgba(139,147,167,0.25)", width: 1, size: 4 },
  font: "11px Inter, system-ui, sans-serif",
};

const FORMATS = {
  ms: (v) => (v === null || v === undefined ? "–" : ms(v)),
  count: (v) => (v === null || v === undefined ? "–" : Number.isInteger(v) ? String(v) : v.toFixed(1)),
};

function axisValues(fmt) {
  if (fmt === "ms") {
    return (u, vals) => vals.map((v) => (v >= 1000 ? `${+(v / 1000).toFixed(1)}s` : `${v}ms`));
  }
  return (u, vals) => vals.map((v) => (Number.isInteger(v) ? String(v) : ""));
}

// One-line clock labels (uPlot's default adds a date line that clips at the left edge).
function timeLabels(u, vals, axisIdx, space, incr) {
  const opts = { hour: "2-digit", minute: "2-digit", hour12: false };
  if (incr < 60) opts.second = "2-digit";
  return vals.map((v) => new Date(v * 1000).toLocaleTimeString(undefined, opts));
}

/**
 * A chart card: `series` = [{label, color, value: (point) => number|null, bars?, fill?, scale?}].
 * Created on the first update (uPlot measures its container), then fed with setData.
 */
export class TimeChart {
  constructor({ id, title, subtitle, series, format = "count", scales }) {
    this.series = series;
    this.format = format;
    this.scales = scales;
    this.plotEl = h("div.chart-plot");
    this.empty = h("div.chart-empty", "No data yet");
    this.el = h("section.card.chart", { dataset: { chart: id } },
      h("header.card-head", h("h3", title), subtitle ? h("span.muted.small", subtitle) : null),
      this.plotEl, this.empty);
    this.plot = null;
    this.points = 0;
    this.resize = new ResizeObserver(() => this.fit());
    this.resize.observe(this.plotEl);
  }

  fit() {
    if (!this.plot) return;
    const w = Math.max(200, Math.floor(this.plotEl.clientWidth));
    if (w !== this.plot.width) this.plot.setSize({ width: w, height: 170 });
  }

  update(points) {
    const xs = points.map((p) => p.t);
    const data = [xs, ...this.series.map((s) => points.map((p) => {
      const v = s.value(p);
      return v === undefined ? null : v;
    }))];
    this.points = xs.length;
    this.el.dataset.points = String(xs.length);
    this.el.dataset.nonzero = String(data.slice(1).some((ys) => ys.some((v) => v)));
    this.empty.hidden = xs.length > 0;
    if (!this.plot) {
      if (!this.plotEl.isConnected) return;
      this.plot = new uPlot(this.options(), data, this.plotEl);
      this.fit();
    } else {
      this.plot.setData(data);
    }
  }

  options() {
    const fmt = FORMATS[this.format];
    const scales = { x: { time: true }, y: { range: (u, min, max) => [0, Math.max(max || 0, this.format === "ms" ? 100 : 1) * 1.1] }, ...(this.scales || {}) };
    const axes = [
      { ...AXIS, space: 70, values: timeLabels },
      { ...AXIS, size: 48, values: axisValues(this.format) },
    ];
    if (this.series.some((s) => s.scale === "s")) {
      axes.push({ ...AXIS, scale: "s", side: 1, size: 48, grid: { show: false }, values: axisValues("ms") });
      scales.s = { range: (u, min, max) => [0, Math.max(max || 0, 100) * 1.1] };
    }
    return {
      width: Math.max(200, this.plotEl.clientWidth || 400),
      height: 170,
      cursor: { points: { size: 6 }, drag: { x: false, y: false } },
      legend: { live: true },
      scales,
      axes,
      series: [
        { value: (u, v) => (v === null ? "–" : new Date(v * 1000).toLocaleTimeString(undefined, { hour12: false })) },
        ...this.series.map((s) => ({
          label: s.label,
          stroke: s.color,
          width: s.bars ? 0 : 1.75,
          fill: s.bars ? s.color + "cc" : s.fill ? s.color + "22" : undefined,
          scale: s.scale || "y",
          spanGaps: false,
          paths: s.bars ? uPlot.paths.bars({ size: [0.7, 14] }) : undefined,
          value: (u, v) => (s.scale === "s" ? FORMATS.ms(v) : fmt(v)),
        })),
      ],
    };
  }

  destroy() {
    this.resize.disconnect();
    this.plot?.destroy();
  }
}

/** The endpoint page's charts, as RunPod's console shows them. */
export function endpointCharts() {
  const p = (k) => (pt) => pt[k];
  const w = (k) => (pt) => (pt.workers ? pt.workers[k] ?? 0 : null);
  return [
    new TimeChart({
      id: "requests", title: "Requests", subtitle: "per bucket",
      series: [
        { label: "requests", color: COLORS.violet, value: p("requests"), bars: true },
        { label: "completed", color: COLORS.green, value: p("completed") },
        { label: "failed", color: COLORS.red, value: p("failed") },
      ],
    }),
    new TimeChart({
      id: "delay", title: "Delay time", subtitle: "queue wait, percentiles", format: "ms",
      series: [
        { label: "P70", color: COLORS.cyan, value: p("delayP70") },
        { label: "P90", color: COLORS.blue, value: p("delayP90") },
        { label: "P98", color: COLORS.violet, value: p("delayP98") },
      ],
    }),
    new TimeChart({
      id: "execution", title: "Execution time", subtitle: "percentiles", format: "ms",
      series: [
        { label: "P70", color: COLORS.green, value: p("executionP70") },
        { label: "P90", color: COLORS.amber, value: p("executionP90") },
        { label: "P98", color: COLORS.red, value: p("executionP98") },
      ],
    }),
    new TimeChart({
      id: "coldstarts", title: "Cold starts", subtitle: "count and P90 start time",
      series: [
        { label: "cold starts", color: COLORS.amber, value: p("coldStarts"), bars: true },
        { label: "P90 start", color: COLORS.pink, value: p("coldStartP90"), scale: "s" },
      ],
    }),
    new TimeChart({
      id: "workers", title: "Workers and queue", subtitle: "by state",
      series: [
        { label: "running", color: COLORS.green, value: w("running"), fill: true },
        { label: "idle", color: COLORS.blue, value: w("idle") },
        { label: "initializing", color: COLORS.amber, value: w("initializing") },
        { label: "throttled", color: COLORS.red, value: w("throttled") },
        { label: "in queue", color: COLORS.violet, value: p("inQueue") },
      ],
    }),
  ];
}
