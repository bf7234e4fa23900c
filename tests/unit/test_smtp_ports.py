"""An e-mail channel without a port uses the port of its security mode (RFC 8314)."""

from __future__ import annotations

import pytest

from countersign.notify.channels import ChannelConfig, DeliveryFailed, Outgoing, deliver


@pytest.mark.parametrize(("security", "port"), [("none", 25), ("starttls", 587), ("tls", 465)])
def test_the_default_port_follows_the_security_mode(security: str, port: int) -> None:
    channel = ChannelConfig(
        "channel",
        "email",
        {"host": "127.0.0.1", "security": security, "from": "cs@contoso.example"},
        None,
    )
    message = Outgoing(
        "message", "tenant", "test", {"channelName": "Mail"}, [{"address": "ops@contoso.example"}]
    )
    # Nothing listens there: the error names the port that was tried.
    with pytest.raises(DeliveryFailed, match=f"SMTP 127.0.0.1:{port}: "):
        deliver(channel, message, public_url="http://testserver", timeout=5)
