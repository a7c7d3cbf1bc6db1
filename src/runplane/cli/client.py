"""The HTTP client of the ``runplane`` commands that talk to a server.

Where a command sends its requests, highest precedence first:

- URL: ``--url``, then ``RUNPLANE_URL``, then the ``url`` of the config file written by
  ``runplane login``, then ``http://127.0.0.1:8000``.
- API key: ``--api-key``, then ``RUNPLANE_API_KEY``, then the config file's ``api_key`` (only
  when the URL in use is the config file's URL, so a key is never sent to another server),
  then ``RUNPOD_API_KEY`` (what RunPod scripts pointed at runplane already set).

The config file is ``$XDG_CONFIG_HOME/runplane/cli.toml`` (``~/.config/runplane/cli.toml``),
written with mode 0600. Every failure becomes a one-line :class:`CliError`, carrying the
server's own reason (its JSON error shape is ``{"error", "message", "status", "field"?}``).
"""

from __future__ import annotations

import json
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer

from runplane.cli.errors import CliError, one_line

DEFAULT_URL = "http://127.0.0.1:8000"

UrlOpt = Annotated[
    str | None,
    typer.Option("--url", envvar="RUNPLANE_URL", show_default=False,
                 help="Server URL [default: from `runplane login`, else http://127.0.0.1:8000]."),
]
KeyOpt = Annotated[
    str | None,
    typer.Option("--api-key", envvar="RUNPLANE_API_KEY", show_default=False,
                 help="API key [default: from `runplane login`, else RUNPOD_API_KEY]."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON (for scripts).")]


def config_path() -> Path:
    """``$XDG_CONFIG_HOME/runplane/cli.toml``, XDG's default being ``~/.config``."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "runplane" / "cli.toml"


def read_config() -> dict[str, Any]:
    """The config file's contents ({} when there is none); a broken file is an error."""
    path = config_path()
    try:
        with path.open("rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        return {}
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise CliError(f"cannot read {path}: {exc} (run `runplane login` again)") from None
    return data


def write_config(url: str, api_key: str) -> Path:
    """Write the URL and key `runplane login` verified; readable by the owner only."""
    path = config_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    # JSON string escapes are valid TOML basic-string escapes.
    text = f"url = {json.dumps(url)}\napi_key = {json.dumps(api_key)}\n"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.chmod(path, 0o600)
    return path


def normalize_url(url: str) -> str:
    """Check the URL is http(s) with a host; drop trailing slashes (and a pasted ``/v1``)."""
    url = url.strip().rstrip("/")
    for suffix in ("/v1", "/v2"):
        if url.endswith(suffix):
            url = url[: -len(suffix)]
    parsed = httpx.URL(url) if "://" in url else None
    if parsed is None or parsed.scheme not in ("http", "https") or not parsed.host:
        raise typer.BadParameter(f"{url!r} is not a server URL like http://127.0.0.1:8000",
                                 param_hint="'--url'")
    return url


@dataclass(frozen=True)
class Target:
    """A server and the key to use with it."""

    url: str
    api_key: str | None


def resolve(url: str | None, api_key: str | None) -> Target:
    """Apply the precedence rules of this module's docstring."""
    config = read_config() if not (url and api_key) else {}
    config_url = normalize_url(str(config["url"])) if config.get("url") else None
    chosen = normalize_url(url) if url else (config_url or DEFAULT_URL)
    key = api_key
    if not key and config.get("api_key") and chosen == config_url:
        key = str(config["api_key"])
    if not key:
        key = os.environ.get("RUNPOD_API_KEY") or None
    return Target(chosen, key)


def server_reason(response: httpx.Response) -> str:
    """The server's reason for a refusal: ``message`` (or ``error``) of its JSON error body."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        message = body.get("message") or body.get("error") or body.get("detail")
        if message:
            return one_line(message if isinstance(message, str) else json.dumps(message))
    text = one_line(response.text, 300)
    return f"HTTP {response.status_code} {response.reason_phrase}" + (f": {text}" if text else "")


class ApiClient:
    """A thin httpx client: authenticated requests, one-line errors, JSON answers."""

    def __init__(self, target: Target, timeout: float = 30.0) -> None:
        if not target.api_key:
            raise CliError("no API key: pass --api-key, set RUNPLANE_API_KEY, "
                           "or run `runplane login`")
        self.target = target
        self._http = httpx.Client(
            base_url=target.url, timeout=timeout,
            headers={"Authorization": f"Bearer {target.api_key}", "User-Agent": "runplane-cli"},
        )

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _transport_error(self, exc: httpx.HTTPError) -> CliError:
        if isinstance(exc, httpx.TimeoutException):
            return CliError(f"{self.target.url} did not answer in time ({type(exc).__name__})")
        return CliError(f"cannot reach {self.target.url}: {exc or type(exc).__name__}")

    def request(self, method: str, path: str, *, json_body: Any = None,
                params: dict[str, Any] | None = None, timeout: float | None = None) -> Any:
        """Send one request; answer the decoded JSON (or text, or None for 204)."""
        clean = {k: v for k, v in (params or {}).items() if v is not None}
        kwargs: dict[str, Any] = {"params": clean}
        if json_body is not None:
            kwargs["json"] = json_body
        if timeout is not None:
            kwargs["timeout"] = timeout
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise self._transport_error(exc) from None
        return self.decode(response)

    @staticmethod
    def decode(response: httpx.Response) -> Any:
        if response.status_code >= 400:
            raise CliError(server_reason(response))
        if response.status_code == 204 or not response.content:
            return None
        if "json" in response.headers.get("content-type", ""):
            try:
                return response.json()
            except ValueError:
                raise CliError(f"the server answered malformed JSON ({response.status_code})") \
                    from None
        return response.text

    def get(self, path: str, **params: Any) -> Any:
        return self.request("GET", path, params=params)

    def post(self, path: str, body: Any = None, **params: Any) -> Any:
        return self.request("POST", path, json_body=body, params=params)

    def patch(self, path: str, body: Any) -> Any:
        return self.request("PATCH", path, json_body=body)

    def delete(self, path: str) -> Any:
        return self.request("DELETE", path)

    def stream(self, method: str, path: str, **kwargs: Any) -> Any:
        """``httpx.Client.stream`` (a context manager) for long answers (Server-Sent Events)."""
        return self._http.stream(method, path, **kwargs)

    def transport_error(self, exc: httpx.HTTPError) -> CliError:
        return self._transport_error(exc)


def connect(url: str | None, api_key: str | None, timeout: float = 30.0) -> ApiClient:
    """A client for the server the flags, environment or config file name."""
    return ApiClient(resolve(url, api_key), timeout)


def parse_json_arg(text: str, option: str) -> Any:
    """A JSON option value: inline JSON, ``@file`` or ``-`` for stdin."""
    source = text
    if text == "-":
        import sys

        source = sys.stdin.read()
    elif text.startswith("@"):
        try:
            source = Path(text[1:]).read_text(encoding="utf-8")
        except OSError as exc:
            raise typer.BadParameter(f"cannot read {text[1:]}: {exc.strerror}",
                                     param_hint=f"'{option}'") from None
    try:
        return json.loads(source)
    except json.JSONDecodeError as exc:
        raise typer.BadParameter(f"not valid JSON ({exc.msg} at line {exc.lineno} column "
                                 f"{exc.colno})", param_hint=f"'{option}'") from None


def parse_pairs(items: list[str] | None, option: str) -> dict[str, str] | None:
    """``KEY=VALUE`` options into a dict (None when none were given)."""
    if not items:
        return None
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"expected KEY=VALUE, got {item!r}", param_hint=f"'{option}'")
        out[key] = value
    return out
