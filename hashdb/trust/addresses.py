"""Which network addresses a webhook may reach: public ones only (no SSRF into the operator's
own network or a cloud metadata service), loopback too when the operator allows it (tests, a
local relay). A host is resolved and every address it names is checked; the delivery then
connects to the address that was checked, so a name that re-resolves elsewhere between the
check and the connection (DNS rebinding) cannot steer it."""

from __future__ import annotations

import ipaddress
import socket

from hashdb.errors import InvalidInput

Address = ipaddress.IPv4Address | ipaddress.IPv6Address

# NAT64 (RFC 6052): 64:ff9b::a.b.c.d reaches the IPv4 address a.b.c.d through a translator.
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one stands for (mapped, 6to4, NAT64, Teredo client), if any."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip.teredo is not None:
        return ip.teredo[1]
    return None


def refusal(ip: Address, allow_loopback: bool) -> str | None:
    """Why a webhook may not be sent to `ip` (a short phrase), or None when it may."""
    if isinstance(ip, ipaddress.IPv6Address):
        inner = _embedded_ipv4(ip)
        if inner is not None:
            return refusal(inner, allow_loopback)
    if ip.is_loopback:
        return None if allow_loopback else "loopback"
    if ip.is_unspecified:
        return "unspecified"
    if ip.is_link_local:
        return "link-local"
    if ip.is_multicast:
        return "multicast"
    if ip.is_private:
        return "private"
    if not ip.is_global:  # shared address space (100.64/10), documentation, reserved ranges
        return "not public"
    return None


def literal(host: str) -> Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def resolve(host: str, port: int) -> list[Address]:
    """Every address `host` names, in the resolver's order (a literal is itself)."""
    given = literal(host)
    if given is not None:
        return [given]
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    out: list[Address] = []
    for *_, sockaddr in infos:
        ip = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if ip not in out:
            out.append(ip)
    return out


def _check(host: str, addresses: list[Address], allow_loopback: bool) -> None:
    for ip in addresses:
        problem = refusal(ip, allow_loopback)
        if problem is not None:
            article = "an" if problem[0] in "aeiou" else "a"
            raise InvalidInput(f"webhook host {host!r} is {ip}, {article} {problem} address: webhooks go to "
                               "public addresses only")


def check_registration(host: str, port: int, allow_loopback: bool) -> None:
    """Refuse a host that is, or resolves to, an address a webhook may not reach. A name that
    does not resolve yet is accepted: every delivery resolves and checks it again."""
    try:
        addresses = resolve(host, port)
    except (OSError, UnicodeError):
        return
    _check(host, addresses, allow_loopback)


def delivery_address(host: str, port: int, allow_loopback: bool) -> Address:
    """The address to connect to, resolved now and checked (all of them: a name must not be
    able to offer a public address to the check and a private one to the connection)."""
    try:
        addresses = resolve(host, port)
    except (OSError, UnicodeError) as exc:
        raise InvalidInput(f"webhook host {host!r} does not resolve ({exc})") from exc
    if not addresses:
        raise InvalidInput(f"webhook host {host!r} has no address")
    _check(host, addresses, allow_loopback)
    return addresses[0]
