"""Where webhooks may go: public addresses only, unless the operator allows a range.

A job's ``webhook`` is a URL its user chose and the body is what their worker wrote, so an
unchecked webhook lets any user make the server POST to its own loopback services, the
cloud's metadata service (169.254.169.254) or the private network behind it (SSRF).

- ``check_url(url)`` (at /run: a 400): the URL is http(s) with a host, and a host given as an
  IP address (or ``localhost``) is a public one.
- ``resolve(url)`` (at send time): every address the host resolves to now is public, and the
  one returned is where the POST goes (``WebhookSender`` connects to that address, so a DNS
  answer that changes between the check and the connect cannot point it elsewhere).

"Public" is ``ipaddress``'s ``is_global`` (no loopback, link-local, private, shared CGNAT,
reserved or documentation ranges; IPv4-mapped IPv6 addresses are judged as IPv4), and never
multicast; ``allow`` (``[broker] webhook_allow_cidrs``) lists networks allowed anyway.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from collections.abc import Sequence
from urllib.parse import urlsplit

from runplane.errors import Invalid

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
_LEGACY_IPV4 = re.compile(r"[0-9a-fA-FxX.]+")
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def networks(cidrs: Sequence[str]) -> tuple[Network, ...]:
    """The operator's allowed ranges; ValueError names a bad one."""
    return tuple(ipaddress.ip_network(c, strict=False) for c in cidrs)


def refusal(address: Address, allow: Sequence[Network] = ()) -> str | None:
    """Why a webhook may not go to ``address`` (None: it may)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if any(address in net for net in allow):
        return None
    if address.is_multicast:
        return "a multicast address"
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address (cloud metadata lives there)"
    if not address.is_global:
        return "a private or reserved address"
    return None


def _host(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise Invalid("webhook: must be an http(s) URL with a host", "webhook")
    return parts.scheme, parts.hostname


def check_url(url: str, allow: Sequence[Network] = ()) -> None:
    """Refuse (``Invalid``, field ``webhook``) what can be refused without DNS."""
    _, host = _host(url)
    if host == "localhost" or host.endswith(".localhost"):
        raise Invalid("webhook: may not point at this server (localhost)", "webhook")
    address = literal_address(host)
    if address is None:
        return  # a name: judged on what it resolves to when the webhook is sent
    why = refusal(address, allow)
    if why:
        raise Invalid(f"webhook: {host} is {why}; webhooks go to public addresses only",
                      "webhook")


async def resolve(url: str, allow: Sequence[Network] = ()) -> Address:
    """The public address to POST ``url`` to; ``Invalid`` when any address the host has
    now is refused (one bad answer is enough: the resolver may rotate them)."""
    scheme, host = _host(url)
    literal = literal_address(host)
    if literal is not None:
        return _checked(literal, host, allow)
    port = urlsplit(url).port or (443 if scheme == "https" else 80)
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses = [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]
    if not addresses:
        raise Invalid(f"webhook: {host} has no address", "webhook")
    for address in addresses:
        _checked(address, host, allow)
    return addresses[0]


def literal_address(host: str) -> Address | None:
    """The address a host names by itself: an IP address, including the legacy IPv4 forms
    resolvers accept (``127.1``, ``0x7f.0.0.1``, ``2130706433``); None for a name."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if _LEGACY_IPV4.fullmatch(host):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def _checked(address: Address, host: str, allow: Sequence[Network]) -> Address:
    why = refusal(address, allow)
    if why:
        raise Invalid(f"webhook: {host} resolves to {address}, {why}", "webhook")
    return address
