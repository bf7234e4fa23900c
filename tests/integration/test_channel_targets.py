"""Outbound requests are safe by default (notify/targets.py): channel targets on loopback,
link-local, private or multicast addresses are refused at save and again at connect time.

No test here sends traffic to any address but 127.0.0.1: every refusal is proved to happen
before a connection is attempted (socket.create_connection, which both httpx and smtplib use,
is replaced by a recorder that refuses everything but 127.0.0.1)."""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

import pytest

from countersign.notify import channels as ch
from countersign.notify import targets
from tests.factories import Tenant, TenantFactory
from tests.integration.receivers import http_receiver

CHANNELS = "/beta/deviceManagement/notificationChannels"
SECRET = "a-webhook-secret-of-some-length"
REFUSED_HOSTS = ["127.0.0.1", "169.254.169.254", "10.0.0.1", "[::1]", "localhost"]


@pytest.fixture()
def connections(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every TCP connection attempted; only 127.0.0.1 ones are let through."""
    attempted: list[Any] = []
    real = socket.create_connection

    def recorder(address: Any, *args: Any, **kwargs: Any) -> socket.socket:
        attempted.append(address)
        if address[0] != "127.0.0.1":
            raise OSError(f"test refuses to connect to {address}")
        return real(address, *args, **kwargs)

    monkeypatch.setattr(socket, "create_connection", recorder)
    return attempted


def _webhook(url: str) -> dict[str, Any]:
    return {"displayName": "Hook", "channelType": "webhook", "url": url, "secret": SECRET}


def _email(host: str) -> dict[str, Any]:
    return {
        "displayName": "Mail",
        "channelType": "email",
        "smtpHost": host,
        "smtpPort": 25,
        "fromAddress": "countersign@example.org",
        "toAddresses": ["admins@example.org"],
    }


@pytest.mark.parametrize("host", REFUSED_HOSTS)
def test_a_channel_aimed_inward_is_refused_at_save(
    tenants: TenantFactory,
    private_targets_refused: None,
    connections: list[Any],
    host: str,
) -> None:
    tenant = tenants()
    for kind in ("webhook", "slack", "teams"):
        body = {**_webhook(f"http://{host}:8080/hook"), "channelType": kind}
        refused = tenant.call("POST", CHANNELS, json=body)
        assert refused.status_code == 400, refused.text
        message = refused.json()["error"]["message"]
        assert "COUNTERSIGN_ALLOW_PRIVATE_CHANNEL_TARGETS" in message
    smtp_host = host.strip("[]")
    refused = tenant.call("POST", CHANNELS, json=_email(smtp_host))
    assert refused.status_code == 400, refused.text
    assert tenant.ok("GET", CHANNELS)["value"] == []
    assert connections == []


def test_editing_a_channel_to_point_inward_is_refused(
    tenants: TenantFactory, private_targets_refused: None
) -> None:
    tenant = tenants()
    created = tenant.ok("POST", CHANNELS, json=_webhook("https://hooks.example/cs"))
    for url in ("http://169.254.169.254/latest/meta-data/", "http://[::ffff:127.0.0.1]/x"):
        refused = tenant.call("PATCH", f"{CHANNELS}/{created['id']}", json={"url": url})
        assert refused.status_code == 400, refused.text
    assert tenant.ok("GET", f"{CHANNELS}/{created['id']}")["url"] == "https://hooks.example/cs"


def _created_while_allowed(tenant: Tenant, body: dict[str, Any]) -> str:
    """A channel saved while private targets were allowed (or before this check existed)."""
    targets.configure(True)
    try:
        created: dict[str, Any] = tenant.ok("POST", CHANNELS, json=body)
    finally:
        targets.configure(False)
    return str(created["id"])


@pytest.mark.parametrize("host", REFUSED_HOSTS)
def test_send_test_message_never_connects_to_an_inward_target(
    tenants: TenantFactory,
    private_targets_refused: None,
    connections: list[Any],
    host: str,
) -> None:
    tenant = tenants()
    with http_receiver() as receiver:
        port = receiver.url.rsplit(":", 1)[1]
        hook = _created_while_allowed(tenant, _webhook(f"http://{host}:{port}/hook"))
        mail = _created_while_allowed(tenant, _email(host.strip("[]")))
        for channel_id in (hook, mail):
            failed = tenant.call("POST", f"{CHANNELS}/{channel_id}/sendTestMessage")
            assert failed.status_code == 502, failed.text
            assert "refused" in failed.json()["error"]["message"]
    assert receiver.received == []
    assert connections == []


def test_a_name_that_rebinds_to_loopback_after_the_save_is_refused_at_connect(
    tenants: TenantFactory,
    private_targets_refused: None,
    connections: list[Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    answers = {"rebind.example": "192.0.2.80"}  # a documentation address first
    real = socket.getaddrinfo

    def resolver(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host in answers:
            family = socket.AF_INET
            return [(family, socket.SOCK_STREAM, 6, "", (answers[host], port))]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    monkeypatch.setattr(targets, "refusal", _refusing_only_loopback(targets.refusal))
    tenant = tenants()
    with http_receiver() as receiver:
        port = receiver.url.rsplit(":", 1)[1]
        created = tenant.ok("POST", CHANNELS, json=_webhook(f"http://rebind.example:{port}/h"))
        answers["rebind.example"] = "127.0.0.1"  # the name now answers with loopback
        failed = tenant.call("POST", f"{CHANNELS}/{created['id']}/sendTestMessage")
    assert failed.status_code == 502 and "refused" in failed.text
    assert receiver.received == [] and connections == []


def _refusing_only_loopback(
    refusal: Callable[[Any], str | None],
) -> Callable[[Any], str | None]:
    """192.0.2.0/24 counts as private in Python; for the rebinding story it plays a public
    address (nothing connects to it: the save only resolves)."""

    def patched(address: Any) -> str | None:
        return None if str(address).startswith("192.0.2.") else refusal(address)

    return patched


def test_allowed_private_targets_connect_to_the_checked_address_without_redirects(
    tenants: TenantFactory, connections: list[Any]
) -> None:
    tenant = tenants()
    with http_receiver() as receiver:
        receiver.script["/moved"] = [302]
        port = receiver.url.rsplit(":", 1)[1]
        good = tenant.ok("POST", CHANNELS, json=_webhook(f"http://localhost:{port}/hook"))
        moved = tenant.ok("POST", CHANNELS, json=_webhook(f"{receiver.url}/moved"))
        tenant.ok("POST", f"{CHANNELS}/{good['id']}/sendTestMessage")
        failed = tenant.call("POST", f"{CHANNELS}/{moved['id']}/sendTestMessage")
    assert failed.status_code == 502 and "302" in failed.text  # not followed
    (hook,) = receiver.at("/hook")
    assert hook.headers["host"] == f"localhost:{port}"  # the name, though the IP was dialled
    assert [address[0] for address in connections] == ["127.0.0.1", "127.0.0.1"]


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "169.254.169.254",
        "10.0.0.1",
        "::1",
        "fe80::1",
        "224.0.0.1",
        "fd00::1",
        "100.64.0.1",
        "0.0.0.0",
        "::ffff:10.0.0.1",
        "192.168.1.1",
        "172.16.0.1",
    ],
)
def test_the_refused_address_kinds(address: str) -> None:
    parsed = targets.literal_address(address)
    assert parsed is not None and targets.refusal(parsed) is not None


def test_a_public_address_is_not_refused() -> None:
    for address in ("93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"):
        parsed = targets.literal_address(address)
        assert parsed is not None and targets.refusal(parsed) is None


def test_the_worker_refuses_at_connect_time_too(
    private_targets_refused: None, connections: list[Any]
) -> None:
    message = ch.Outgoing(id="m", tenant_id="t", event="test", content={"channelName": "x"})
    for kind, settings in (
        ("webhook", {"url": "http://169.254.169.254/latest"}),
        ("email", {"host": "10.0.0.1", "from": "a@example.org", "to": ["b@example.org"]}),
    ):
        channel = ch.ChannelConfig("c", kind, settings, SECRET)
        with pytest.raises(ch.DeliveryFailed, match="refused"):
            ch.deliver(channel, message, public_url="http://testserver", timeout=2)
    assert connections == []
