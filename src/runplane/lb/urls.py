"""Where clients call a load-balancing endpoint."""

from __future__ import annotations

from urllib.parse import urlsplit

PATH_PREFIX = "/lb/"


def base_url(endpoint_id: str, api_url: str, base_domain: str = "") -> str:
    """``https://{id}.{base_domain}`` (the scheme of ``api_url``) when the operator set a
    wildcard domain, else ``{api_url}/lb/{id}``."""
    if base_domain:
        scheme = urlsplit(api_url).scheme or "https"
        return f"{scheme}://{endpoint_id}.{base_domain}"
    return f"{api_url.rstrip('/')}{PATH_PREFIX}{endpoint_id}"


def endpoint_of_host(host: str, base_domain: str) -> str | None:
    """The endpoint id of a ``Host`` header ``{id}.{base_domain}[:port]``, else None."""
    if not base_domain or not host:
        return None
    name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    name = name.lower().rstrip(".")
    suffix = "." + base_domain.lower().strip(".")
    if not name.endswith(suffix):
        return None
    label = name[: -len(suffix)]
    return label if label and "." not in label else None
