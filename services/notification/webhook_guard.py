"""Webhook addresses may not point into internal networks (server-side request forgery).

An office's webhook is an address typed into a console: without a check, anyone allowed
to set it could make the notification service call its own database, the metadata
service of the cloud, or another internal system. So, unless
``KHAIBAO_NOTIFICATION_WEBHOOK_ALLOW_PRIVATE`` is true (development, tests with a local
receiver, a gateway deliberately inside the network):

* only ``https://`` is accepted (``http://`` only with the setting);
* the host is resolved, and the address is refused if ANY of its addresses is loopback,
  private, link-local, multicast, reserved, unspecified, shared (carrier-grade NAT),
  documentation or otherwise not global — IPv4 and IPv6, an IPv4 address written inside
  an IPv6 one (``::ffff:10.0.0.1``, 6to4, NAT64...) included;
* at delivery time the check is made again and the request is sent to the very addresses
  that were checked (the URL's host is replaced by it; the ``Host`` header and the TLS
  server name — and so the certificate check — keep the name), so a DNS answer that
  changes between the check and the connection (DNS rebinding) cannot lead elsewhere.
"""
from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
NAT64 = ipaddress.ip_network("64:ff9b::/96")
NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")
RESOLVE_TIMEOUT = 5.0


class UnsafeWebhook(Exception):
    """The address must not be called. ``code``: bad_webhook, bad_webhook_https,
    webhook_private, webhook_unresolvable (the last one may pass later: DNS trouble)."""

    def __init__(self, code: str, detail: str = "") -> None:
        super().__init__(code if not detail else f"{code}: {detail}")
        self.code = code
        self.detail = detail


@dataclass(frozen=True)
class Target:
    """Where a webhook call really goes: ``url`` with the checked address as its host."""

    url: str
    host_header: str
    server_name: str
    address: str


def embedded_ipv4(address: Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries (mapped, compatible, 6to4, Teredo, NAT64)."""
    if not isinstance(address, ipaddress.IPv6Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if address in NAT64 or address in NAT64_LOCAL:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if int(address) >> 32 == 0 and int(address) > 1:  # ::a.b.c.d (deprecated IPv4-compatible)
        return ipaddress.IPv4Address(int(address))
    return None


def is_internal(address: Address) -> bool:
    """True for every address a webhook must not reach."""
    inner = embedded_ipv4(address)
    if inner is not None and is_internal(inner):
        return True
    return (address.is_loopback or address.is_private or address.is_link_local or address.is_multicast
            or address.is_reserved or address.is_unspecified or not address.is_global
            or (isinstance(address, ipaddress.IPv6Address) and address.is_site_local))


def split(url: str, *, allow_private: bool) -> SplitResult:
    """The parts of a webhook URL with its form checked (scheme, host, no credentials)."""
    url = (url or "").strip()
    if not url or len(url) > 500 or any(c.isspace() or ord(c) < 32 for c in url):
        raise UnsafeWebhook("bad_webhook")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number or out of range
    except ValueError:
        raise UnsafeWebhook("bad_webhook") from None
    if parts.scheme == "http" and not allow_private:
        raise UnsafeWebhook("bad_webhook_https")
    if parts.scheme not in ("https", "http") or not parts.hostname or parts.username or parts.password:
        raise UnsafeWebhook("bad_webhook")
    return parts


def literal(host: str) -> Address | None:
    try:
        return ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return None


def stored_problem(url: str | None, *, allow_private: bool) -> UnsafeWebhook | None:
    """Why a saved address would be refused now, as far as is known without DNS (its form,
    its scheme, an IP address written in it): shown on the settings page."""
    if not url:
        return None
    try:
        parts = split(url, allow_private=allow_private)
    except UnsafeWebhook as unsafe:
        return unsafe
    address = literal(parts.hostname)
    if not allow_private and address is not None and is_internal(address):
        return UnsafeWebhook("webhook_private", str(address))
    return None


async def resolve(host: str, port: int) -> list[Address]:
    """Every address of ``host`` (IPv4 and IPv6), in the resolver's order."""
    address = literal(host)
    if address is not None:
        return [address]
    loop = asyncio.get_running_loop()
    try:
        infos = await asyncio.wait_for(loop.getaddrinfo(host, port, type=socket.SOCK_STREAM), RESOLVE_TIMEOUT)
    except (OSError, UnicodeError, asyncio.TimeoutError):
        raise UnsafeWebhook("webhook_unresolvable", host[:100]) from None
    found = list(dict.fromkeys(literal(str(info[4][0])) for info in infos))
    found = [a for a in found if a is not None]
    if not found:
        raise UnsafeWebhook("webhook_unresolvable", host[:100])
    return found


async def check(url: str, *, allow_private: bool) -> tuple[SplitResult, list[Address]]:
    """The URL's parts and its host's addresses, or ``UnsafeWebhook``."""
    parts = split(url, allow_private=allow_private)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    addresses = await resolve(parts.hostname, port)
    if not allow_private:
        refused = [a for a in addresses if is_internal(a)]
        if refused:
            raise UnsafeWebhook("webhook_private", str(refused[0]))
    return parts, addresses


async def targets(url: str, *, allow_private: bool) -> list[Target]:
    """Check ``url`` now; one pinned target per checked address, in the resolver's order
    (the caller tries the next one when it cannot connect to one)."""
    parts, addresses = await check(url, allow_private=allow_private)
    name = parts.hostname
    port = f":{parts.port}" if parts.port else ""
    host_header = (f"[{name}]" if ":" in name else name) + port
    pinned = []
    for address in addresses[:4]:
        host = f"[{address}]" if isinstance(address, ipaddress.IPv6Address) else str(address)
        pinned.append(Target(url=parts._replace(netloc=host + port).geturl(), host_header=host_header,
                             server_name=name, address=str(address)))
    return pinned
