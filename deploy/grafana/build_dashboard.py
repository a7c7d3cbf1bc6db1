"""Writes runplane.json, the Grafana dashboard for runplane's /metrics (docs/observability.md).

The JSON is generated so the panels stay consistent (one datasource variable, one endpoint
filter, the same units); edit this file and run ``python deploy/grafana/build_dashboard.py``.
tests/unit/test_grafana_dashboard.py checks the JSON is current and only uses metrics the
server exposes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

OUT = Path(__file__).with_name("runplane.json")
DS = {"type": "prometheus", "uid": "${datasource}"}
EP = 'endpoint_id=~"$endpoint"'
RATE = "$__rate_interval"


class Layout:
    """Places panels left to right in rows of 24 grid units."""

    def __init__(self) -> None:
        self.panels: list[dict[str, Any]] = []
        self.x = 0
        self.y = 0
        self.row_h = 0

    def row(self, title: str) -> None:
        self._newline()
        self.panels.append({"type": "row", "title": title, "collapsed": False, "panels": [],
                            "id": len(self.panels) + 1,
                            "gridPos": {"h": 1, "w": 24, "x": 0, "y": self.y}})
        self.y += 1

    def add(self, panel: dict[str, Any], w: int, h: int = 8) -> None:
        if self.x + w > 24:
            self._newline()
        panel["id"] = len(self.panels) + 1
        panel["gridPos"] = {"h": h, "w": w, "x": self.x, "y": self.y}
        self.panels.append(panel)
        self.x += w
        self.row_h = max(self.row_h, h)

    def _newline(self) -> None:
        self.y += self.row_h
        self.x = 0
        self.row_h = 0


def target(expr: str, legend: str, ref: str = "A") -> dict[str, Any]:
    return {"refId": ref, "datasource": DS, "expr": expr, "legendFormat": legend,
            "range": True}


def timeseries(title: str, targets: list[dict[str, Any]], unit: str = "short",
               description: str = "", stack: bool = False, bars: bool = False) -> dict[str, Any]:
    custom: dict[str, Any] = {"drawStyle": "bars" if bars else "line", "fillOpacity": 20 if stack else 5,
                              "lineWidth": 1, "showPoints": "never", "spanNulls": True,
                              "stacking": {"mode": "normal" if stack else "none", "group": "A"}}
    return {"type": "timeseries", "title": title, "description": description,
            "datasource": DS, "targets": targets,
            "fieldConfig": {"defaults": {"unit": unit, "min": 0, "custom": custom},
                            "overrides": []},
            "options": {"legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
                        "tooltip": {"mode": "multi", "sort": "desc"}}}


def quantiles(metric: str, by: str = "") -> list[dict[str, Any]]:
    group = f"le{', ' + by if by else ''}"
    label = f"{{{{{by}}}}} " if by else ""
    return [target(f"histogram_quantile({q}, sum by ({group}) (rate({metric}_bucket{{{EP}}}[{RATE}])))",
                   f"{label}p{int(q * 100)}", ref)
            for q, ref in ((0.5, "A"), (0.9, "B"), (0.99, "C"))]


def build() -> dict[str, Any]:
    L = Layout()
    L.row("Queue and jobs")
    L.add(timeseries("Queue depth", [target(f"sum by (endpoint_id) (runplane_queue_depth{{{EP}}})",
                                            "{{endpoint_id}}")],
                     description="Jobs IN_QUEUE per endpoint."), 8)
    L.add(timeseries("Oldest queued job", [target(
        f"max by (endpoint_id) (runplane_queue_oldest_age_seconds{{{EP}}})", "{{endpoint_id}}")],
        unit="s", description="Age of the oldest queued (not lowPriority) job: what "
                              "QUEUE_DELAY scaling reacts to."), 8)
    L.add(timeseries("Jobs in progress", [target(
        f"sum by (endpoint_id) (runplane_jobs_in_progress{{{EP}}})", "{{endpoint_id}}")]), 8)
    L.add(timeseries("Jobs submitted / s", [
        target(f"sum by (endpoint_id) (rate(runplane_jobs_submitted_total{{{EP}}}[{RATE}]))",
               "{{endpoint_id}}"),
        target(f"sum by (endpoint_id) (rate(runplane_jobs_requeued_total{{{EP}}}[{RATE}]))",
               "{{endpoint_id}} requeued", "B")], unit="reqps"), 8)
    L.add(timeseries("Jobs finished / s by state", [target(
        f"sum by (status) (rate(runplane_jobs_finished_total{{{EP}}}[{RATE}]))", "{{status}}")],
        unit="reqps", stack=True), 8)
    L.add(timeseries("Failed share", [target(
        f'sum(rate(runplane_jobs_finished_total{{{EP}, status!="COMPLETED"}}[{RATE}])) / '
        f"sum(rate(runplane_jobs_finished_total{{{EP}}}[{RATE}]))", "failed, timed out, cancelled")],
        unit="percentunit"), 8)
    L.add(timeseries("Delay time (queue wait)", quantiles("runplane_job_delay_seconds"), unit="s",
                     description="Submission to job-take (RunPod's delayTime)."), 12)
    L.add(timeseries("Execution time", quantiles("runplane_job_execution_seconds"), unit="s",
                     description="Job-take to final state (RunPod's executionTime)."), 12)

    L.row("Workers and scaling")
    L.add(timeseries("Workers by state", [target(
        f"sum by (state) (runplane_workers{{{EP}}})", "{{state}}")], stack=True,
        description="THROTTLED: wanted but waiting for capacity or the crash-loop backoff."), 8)
    L.add(timeseries("Desired vs live workers", [
        target(f"sum by (endpoint_id) (runplane_endpoint_desired_workers{{{EP}}})",
               "{{endpoint_id}} desired"),
        target(f'sum by (endpoint_id) (runplane_workers{{{EP}, state=~"initializing|idle|running"}})',
               "{{endpoint_id}} live", "B")]), 8)
    L.add(timeseries("Scaling decisions", [target(
        f"sum by (action, reason) (increase(runplane_scaling_decisions_total{{{EP}}}[{RATE}]))",
        "{{action}} {{reason}}")], bars=True, stack=True,
        description="Workers started (up) and stopped (down) by the autoscaler, by reason."), 8)
    L.add(timeseries("Cold start", quantiles("runplane_worker_cold_start_seconds"), unit="s",
                     description="Worker start to its first job-take."), 12)
    L.add(timeseries("Cold starts / min", [target(
        f"sum by (endpoint_id) (increase(runplane_worker_cold_start_seconds_count{{{EP}}}[1m]))",
        "{{endpoint_id}}")], bars=True), 12)

    L.row("Machines")
    L.add({"type": "bargauge", "title": "GPUs in use", "datasource": DS,
           "targets": [target("sum by (machine_id, gpu_type_id) (runplane_machine_gpus_used) / "
                              "sum by (machine_id, gpu_type_id) (runplane_machine_gpus)",
                              "{{machine_id}} {{gpu_type_id}}")],
           "fieldConfig": {"defaults": {"unit": "percentunit", "min": 0, "max": 1,
                                        "thresholds": {"mode": "absolute", "steps": [
                                            {"color": "green", "value": None},
                                            {"color": "orange", "value": 0.8},
                                            {"color": "red", "value": 0.95}]}},
                           "overrides": []},
           "options": {"orientation": "horizontal", "displayMode": "gradient",
                       "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False}}},
          8)
    L.add(timeseries("GPUs used / total", [
        target("sum by (machine_id) (runplane_machine_gpus_used)", "{{machine_id}} used"),
        target("sum by (machine_id) (runplane_machine_gpus)", "{{machine_id}} total", "B")]), 8)
    L.add(timeseries("vCPUs and memory held", [
        target("runplane_machine_vcpus_used / runplane_machine_vcpus", "{{machine_id}} vCPU"),
        target("runplane_machine_memory_used_gb / runplane_machine_memory_gb",
               "{{machine_id}} memory", "B")], unit="percentunit",
        description="CPU workers and pods; CPU may be over-committed (above 100 %)."), 8)
    L.add(timeseries("Reconcile tick duration", [target(
        "runplane_controller_last_tick_seconds", "last tick")], unit="s"), 12)
    L.add(timeseries("Reconcile ticks / s", [target(
        f"rate(runplane_controller_ticks_total[{RATE}])", "ticks")]), 12)

    return {
        "uid": "runplane",
        "title": "runplane",
        "description": "Queues, jobs, workers, scaling and GPU use of a runplane server.",
        "tags": ["runplane"],
        "timezone": "browser",
        "editable": True,
        "graphTooltip": 1,
        "schemaVersion": 39,
        "version": 1,
        "refresh": "30s",
        "time": {"from": "now-1h", "to": "now"},
        "annotations": {"list": []},
        "links": [],
        "templating": {"list": [
            {"name": "datasource", "label": "Prometheus", "type": "datasource",
             "query": "prometheus", "current": {}, "hide": 0, "refresh": 1},
            {"name": "endpoint", "label": "Endpoint", "type": "query", "datasource": DS,
             "query": {"query": "label_values(runplane_queue_depth, endpoint_id)",
                       "refId": "endpoints"},
             "definition": "label_values(runplane_queue_depth, endpoint_id)",
             "includeAll": True, "multi": True, "allValue": ".*", "current": {},
             "refresh": 2, "sort": 1, "hide": 0},
        ]},
        "panels": L.panels,
    }


def render() -> str:
    return json.dumps(build(), indent=2) + "\n"


if __name__ == "__main__":
    OUT.write_text(render())
    print(f"wrote {OUT}")
