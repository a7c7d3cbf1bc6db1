"""The job API from the command line: ``runplane run``, ``runplane jobs ...`` and
``runplane health`` (``/v2/{endpointId}/run|status|stream|cancel|retry|purge-queue|health``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Annotated, Any

import httpx
import typer

from runplane.cli.client import (
    ApiClient, JsonOpt, KeyOpt, UrlOpt, connect, parse_json_arg,
)
from runplane.cli.errors import CliError, fail
from runplane.cli.output import done, out, print_json, progress, show, waiting

jobs_app = typer.Typer(help="Jobs of an endpoint: status, wait, stream, cancel, retry, purge.",
                       no_args_is_help=True)

FINAL = ("COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT")
EndpointArg = Annotated[str, typer.Argument(metavar="ENDPOINT_ID", help="The endpoint's id.")]
JobArg = Annotated[str, typer.Argument(metavar="JOB_ID", help="The job's id.")]
Timeout = Annotated[float, typer.Option(
    "--timeout", min=0, help="Seconds to wait for the result (0: no limit).")]


def error_text(error: Any) -> str:
    """A job's ``error``: the SDK sends handler exceptions as a JSON string with
    ``error_type``/``error_message``; show the message (and type) only."""
    if isinstance(error, str):
        try:
            parsed = json.loads(error)
        except ValueError:
            return error
        error = parsed
    if isinstance(error, dict) and error.get("error_message"):
        kind = error.get("error_type") or ""
        kind = kind.removeprefix("<class '").removesuffix("'>")
        return f"{kind}: {error['error_message']}" if kind else str(error["error_message"])
    return error if isinstance(error, str) else json.dumps(error)


def _seconds(ms: Any) -> str:
    return f"{ms / 1000:.2f}s" if isinstance(ms, (int, float)) else "-"


def wait_for(api: ApiClient, endpoint: str, job_id: str, timeout: float,
             status: str = "IN_QUEUE") -> dict[str, Any]:
    """Poll ``/status`` until the job is final, with a spinner on a terminal."""
    started = time.monotonic()
    delay = 0.1
    try:
        with waiting(f"job {job_id}: {status}") as spinner:
            while True:
                job = api.get(f"/v2/{endpoint}/status/{job_id}")
                if job.get("status") in FINAL:
                    return job
                elapsed = time.monotonic() - started
                if spinner is not None:
                    spinner.update(f"job {job_id}: {job.get('status')} ({elapsed:.0f}s)")
                if timeout and elapsed >= timeout:
                    fail(f"job {job_id} is still {job.get('status')} after {timeout:g}s; "
                         f"wait again with: runplane jobs wait {endpoint} {job_id}")
                time.sleep(delay)
                delay = min(delay * 1.5, 1.0)
    except KeyboardInterrupt:
        fail(f"stopped waiting; job {job_id} goes on "
             f"(runplane jobs cancel {endpoint} {job_id} to cancel it)")


def report(job: dict[str, Any], as_json: bool) -> None:
    """Print a final job: its output on stdout (``--json``: the whole job); a job that did not
    complete is an error."""
    if as_json:
        print_json(job)
    elif job.get("status") == "COMPLETED":
        output = job.get("output")
        print(output if isinstance(output, str) else json.dumps(output, indent=2,
                                                                 ensure_ascii=False))
        done(f"job {job['id']} COMPLETED (queued {_seconds(job.get('delayTime'))}, ran "
             f"{_seconds(job.get('executionTime'))} on worker {job.get('workerId', '-')})")
    if job.get("status") != "COMPLETED":
        reason = f": {error_text(job['error'])}" if job.get("error") else ""
        fail(f"job {job.get('id')} {job.get('status')}{reason}")


def sse_events(api: ApiClient, endpoint: str, job_id: str) -> Iterator[tuple[str, Any]]:
    """The job's Server-Sent Events stream: (``chunk`` | ``status``, data) as they come."""
    try:
        with api.stream("GET", f"/v2/{endpoint}/stream/{job_id}",
                        headers={"Accept": "text/event-stream"},
                        timeout=httpx.Timeout(30.0, read=90.0)) as response:
            if response.status_code >= 400:
                response.read()
                ApiClient.decode(response)
            event, data = "message", list[str]()
            for line in response.iter_lines():
                if line.startswith(":"):
                    continue
                if not line:
                    if data:
                        yield event, json.loads("\n".join(data))
                    event, data = "message", []
                elif line.startswith("event:"):
                    event = line[6:].strip()
                elif line.startswith("data:"):
                    data.append(line[5:].lstrip())
            if data:
                yield event, json.loads("\n".join(data))
    except httpx.HTTPError as exc:
        raise api.transport_error(exc) from None


def follow_stream(api: ApiClient, endpoint: str, job_id: str, as_json: bool) -> dict[str, Any]:
    """Print each streamed chunk as it arrives; answer the final job."""
    try:
        for event, data in sse_events(api, endpoint, job_id):
            if event == "chunk":
                chunk = data.get("output") if isinstance(data, dict) else data
                if as_json:
                    print(json.dumps(chunk, ensure_ascii=False), flush=True)
                else:
                    print(chunk if isinstance(chunk, str) else json.dumps(chunk), flush=True)
            elif event == "status":
                return data
    except KeyboardInterrupt:
        fail(f"stopped following; job {job_id} goes on")
    raise CliError(f"the stream of job {job_id} ended without its final status")


def finish_stream(job: dict[str, Any]) -> None:
    """After the chunks: a one-line summary, or the error of a job that did not complete."""
    if job.get("status") != "COMPLETED":
        reason = f": {error_text(job['error'])}" if job.get("error") else ""
        fail(f"job {job.get('id')} {job.get('status')}{reason}")
    done(f"job {job['id']} COMPLETED (ran {_seconds(job.get('executionTime'))})")


def run(
    endpoint: EndpointArg,
    input_: Annotated[str, typer.Option(
        "--input", "-i", help="The job's input: JSON, @file.json or - for stdin.")] = "{}",
    timeout: Timeout = 0,
    no_wait: Annotated[bool, typer.Option(
        "--no-wait", help="Print the job id and return at once.")] = False,
    stream: Annotated[bool, typer.Option(
        "--stream", help="Print streamed chunks as they arrive (generator handlers).")] = False,
    webhook: Annotated[str | None, typer.Option("--webhook", help="URL to POST the result to.")] = None,
    execution_timeout_ms: Annotated[int | None, typer.Option(
        "--execution-timeout-ms", help="policy.executionTimeout for this job.")] = None,
    ttl_ms: Annotated[int | None, typer.Option("--ttl-ms", help="policy.ttl for this job.")] = None,
    low_priority: Annotated[bool, typer.Option(
        "--low-priority", help="policy.lowPriority: never scales the endpoint up.")] = False,
    url: UrlOpt = None, api_key: KeyOpt = None, as_json: JsonOpt = False,
) -> None:
    """Send a job to an endpoint, wait for it and print its output.

    Example: runplane run ENDPOINT_ID --input '{"name": "you"}'
    """
    body: dict[str, Any] = {"input": parse_json_arg(input_, "--input")}
    policy = {k: v for k, v in (("executionTimeout", execution_timeout_ms), ("ttl", ttl_ms),
                                ("lowPriority", low_priority or None)) if v is not None}
    if policy:
        body["policy"] = policy
    if webhook:
        body["webhook"] = webhook
    with connect(url, api_key) as api:
        queued = api.post(f"/v2/{endpoint}/run", body)
        job_id = queued["id"]
        if no_wait:
            if as_json:
                print_json(queued)
            else:
                print(job_id)
            return
        progress(f"job {job_id} {queued.get('status', 'IN_QUEUE')}")
        if stream:
            finish_stream(follow_stream(api, endpoint, job_id, as_json))
            return
        report(wait_for(api, endpoint, job_id, timeout, queued.get("status", "IN_QUEUE")),
               as_json)


@jobs_app.command("status")
def jobs_status(endpoint: EndpointArg, job_id: JobArg, url: UrlOpt = None, api_key: KeyOpt = None,
                as_json: JsonOpt = False) -> None:
    """Show a job's status (and output or error once it has one)."""
    with connect(url, api_key) as api:
        show(api.get(f"/v2/{endpoint}/status/{job_id}"), as_json)


@jobs_app.command("wait")
def jobs_wait(endpoint: EndpointArg, job_id: JobArg, timeout: Timeout = 0, url: UrlOpt = None,
              api_key: KeyOpt = None, as_json: JsonOpt = False) -> None:
    """Wait for a job to finish and print its output."""
    with connect(url, api_key) as api:
        report(wait_for(api, endpoint, job_id, timeout), as_json)


@jobs_app.command("stream")
def jobs_stream(endpoint: EndpointArg, job_id: JobArg, url: UrlOpt = None, api_key: KeyOpt = None,
                as_json: JsonOpt = False) -> None:
    """Print a job's streamed chunks as they arrive, until it ends."""
    with connect(url, api_key) as api:
        finish_stream(follow_stream(api, endpoint, job_id, as_json))


@jobs_app.command("cancel")
def jobs_cancel(endpoint: EndpointArg, job_id: JobArg, url: UrlOpt = None, api_key: KeyOpt = None,
                as_json: JsonOpt = False) -> None:
    """Cancel a queued or running job."""
    with connect(url, api_key) as api:
        answer = api.post(f"/v2/{endpoint}/cancel/{job_id}")
    print_json(answer) if as_json else done(f"job {job_id} {answer.get('status')}")


@jobs_app.command("retry")
def jobs_retry(endpoint: EndpointArg, job_id: JobArg, url: UrlOpt = None, api_key: KeyOpt = None,
               as_json: JsonOpt = False) -> None:
    """Queue a FAILED or TIMED_OUT job again (same id)."""
    with connect(url, api_key) as api:
        answer = api.post(f"/v2/{endpoint}/retry/{job_id}")
    print_json(answer) if as_json else done(f"job {job_id} {answer.get('status')}")


@jobs_app.command("purge")
def jobs_purge(endpoint: EndpointArg, url: UrlOpt = None, api_key: KeyOpt = None,
               as_json: JsonOpt = False) -> None:
    """Remove every queued job of an endpoint (running jobs go on)."""
    with connect(url, api_key) as api:
        answer = api.post(f"/v2/{endpoint}/purge-queue")
    print_json(answer) if as_json else done(f"{answer.get('removed', 0)} queued jobs removed")


def health(endpoint: EndpointArg, url: UrlOpt = None, api_key: KeyOpt = None,
           as_json: JsonOpt = False) -> None:
    """Show an endpoint's job counts and workers by state."""
    with connect(url, api_key) as api:
        found = api.get(f"/v2/{endpoint}/health")
    if as_json:
        print_json(found)
        return
    for title in ("jobs", "workers"):
        counts = found.get(title) or {}
        out.print(f"[bold]{title:<8}[/]" + "  ".join(f"{k} {v}" for k, v in counts.items()),
                  highlight=False)
