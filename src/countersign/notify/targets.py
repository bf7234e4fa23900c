"""Where the server may connect on a channel's behalf: outbound requests are safe by default.

A channel's target (a webhook, Slack or Teams URL, an SMTP host) is chosen by a tenant
administrator, and the server itself connects to it (in the worker, and at once for
`sendTestMessage`). Left open, that lets an administrator aim the server at what only the
server can reach: its own loopback services, the cloud metadata endpoint (169.254.169.254), the
private network behind it. So a target whose address is loopback, link-local, private (RFC 1918,
unique-local IPv6, carrier-grade NAT), multicast, unspecified or reserved is refused:

- **at save**, when the channel is created or edited: a literal address, or a name that
  resolves to such an address now, is a 400;
- **at connect time**, after resolving the name again: delivery connects to the very address
  that was checked (never resolving twice), so a name that changes its answer between the check
  and the connection (DNS rebinding) cannot slip past. A name that resolves to several
  addresses is refused when any of them is refused.

Operators whose channels really are on their own network (an SMTP relay on 10.0.0.25, a local
test receiver) allow them with `COUNTERSIGN_ALLOW_PRIVATE_CHANNEL_TARGETS=true`. The setting is
process-wide: `configure()` is called by create_app() and by the worker with their Settings;
until then the environment variable decides.
"""

from __future__ import annotations

import concurrent.futures
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_allow_private: bool | None = None


class TargetRefused(ValueError):
    """The target's address is one the server does not connect to on a channel's behalf."""


def configure(allow_private: bool) -> None:
    global _allow_private
    _allow_private = allow_private


def private_targets_allowed() -> bool:
    if _allow_private is None:
        from countersign.config import Settings

        return Settings().allow_private_channel_targets
    return _allow_private


def refusal(address: IPAddress) -> str | None:
    """Why the server does not connect to `address`, or None when it may."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
    for label, refused in (
        ("a loopback address", address.is_loopback),
        ("a link-local address", address.is_link_local),
        ("a multicast address", address.is_multicast),
        ("the unspecified address", address.is_unspecified),
        ("a private address", address.is_private),
        ("a reserved address", address.is_reserved),
    ):
        if refused:
            return label
    if isinstance(address, ipaddress.IPv4Address) and address in _SHARED:
        return "a private address"  # 100.64.0.0/10, carrier-grade NAT (not is_private)
    return None


_SHARED = ipaddress.IPv4Network("100.64.0.0/10")


def literal_address(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def url_host(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    if not parts.hostname:
        raise TargetRefused(f"'{url}' names no host.")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise TargetRefused(f"'{url}' has an invalid port.") from None
    return parts.hostname, port


def _resolve(host: str, port: int) -> list[IPAddress]:
    literal = literal_address(host)
    if literal is not None:
        return [literal]
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    found: list[IPAddress] = []
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if address not in found:
            found.append(address)
    return found


def _check_all(host: str, addresses: list[IPAddress]) -> None:
    if private_targets_allowed():
        return
    for address in addresses:
        why = refusal(address)
        if why is not None:
            shown = host if literal_address(host) else f"{host} ({address})"
            raise TargetRefused(
                f"The target {shown} is {why}; channels may not point at loopback, link-local, "
                "private or multicast addresses (an operator allows them with "
                "COUNTERSIGN_ALLOW_PRIVATE_CHANNEL_TARGETS)."
            )


# Saving runs inside the change's database transaction: a slow resolver must not hold it.
SAVE_RESOLVE_SECONDS = 2.0
_resolver = concurrent.futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix="resolve")


def check_at_save(host: str, port: int) -> None:
    """Refuse a target that is, or resolves now to, a refused address. A name that does not
    resolve at all, or not within SAVE_RESOLVE_SECONDS, is accepted (it may exist later): it
    is checked again at connect time, where nothing is sent without the check."""
    if private_targets_allowed():
        return
    literal = literal_address(host)
    if literal is not None:
        _check_all(host, [literal])
        return
    try:
        addresses = _resolver.submit(_resolve, host, port).result(SAVE_RESOLVE_SECONDS)
    except (OSError, UnicodeError, concurrent.futures.TimeoutError):
        return
    _check_all(host, addresses)


@dataclass(frozen=True)
class Checked:
    """A target resolved once and checked: connect to `address`, present `host` (Host header,
    TLS server name)."""

    host: str
    port: int
    address: str


def resolve_for_connect(host: str, port: int) -> Checked:
    """Resolve `host` and check every address; raises TargetRefused or OSError."""
    try:
        addresses = _resolve(host, port)
    except UnicodeError as exc:
        raise OSError(f"cannot resolve {host}: {exc}") from None
    if not addresses:
        raise OSError(f"{host} has no address")
    _check_all(host, addresses)
    return Checked(host, port, str(addresses[0]))


def connect(host: str, port: int, timeout: float | None) -> socket.socket:
    """A TCP connection to the checked address of `host` (for SMTP)."""
    checked = resolve_for_connect(host, port)
    return socket.create_connection((checked.address, port), timeout)
