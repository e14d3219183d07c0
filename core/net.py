"""Where the platform may send requests on a customer's behalf (webhooks): public addresses only.

A URL is checked when it is registered and again, by resolving it, right before each delivery, so a DNS
record changed to point at 127.0.0.1 or 169.254.169.254 later cannot reach the platform's own network.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Sequence
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class UnsafeTarget(ValueError):
    """The URL is not http(s), has no host, does not resolve, or resolves to a non-public address."""


class UnresolvableHost(UnsafeTarget):
    """The host has no address right now: refused at registration, but only a failed attempt at delivery."""


def _is_public(address: IPAddress) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped  # ::ffff:127.0.0.1 is loopback too
    return address.is_global and not address.is_multicast


def check_address(address: IPAddress, allowed_networks: Sequence[str]) -> None:
    if _is_public(address) or any(address in ipaddress.ip_network(net, strict=False) for net in allowed_networks):
        return
    raise UnsafeTarget(f"{address} is a private, loopback, link-local or reserved address")


def split_target(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of an http(s) URL, or UnsafeTarget."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UnsafeTarget("the URL must be http:// or https:// with a host")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise UnsafeTarget("the URL's port is not a number from 1 to 65535") from exc
    return parts.scheme, parts.hostname, port


async def resolve_public(url: str, allowed_networks: Sequence[str]) -> list[IPAddress]:
    """Every address the URL's host resolves to, all checked; UnsafeTarget if any is not allowed.

    All of them, not just the first: a host with one public and one private record could otherwise be
    steered to the private one by the connecting client.
    """
    _, host, port = split_target(url)
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        check_address(literal, allowed_networks)
        return [literal]
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise UnresolvableHost(f"{host} does not resolve ({exc.strerror})") from exc
    addresses = list(dict.fromkeys(ipaddress.ip_address(info[4][0]) for info in infos))
    for address in addresses:
        check_address(address, allowed_networks)
    return addresses
