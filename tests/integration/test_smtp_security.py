"""E-mail channels over real SMTP servers (aiosmtpd) that speak STARTTLS or implicit TLS and
require a login, with a certificate from a private CA made in the test: the channel verifies
it against its `smtpCaCertificate`, and refuses it without."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from countersign.config import Settings
from countersign.store.db import Database
from countersign.worker import Worker
from tests.factories import Tenant, TenantFactory
from tests.integration.receivers import Certificates, private_ca_certificates, smtp_receiver
from tests.integration.test_notifications import (
    enqueue_for,
    insert_request,
    later,
    messages_of,
)

CHANNELS = "/beta/deviceManagement/notificationChannels"
USER, PASSWORD = "countersign", "smtp-pa55word-never-shown"


@pytest.fixture(scope="module")
def certificates() -> Certificates:
    return private_ca_certificates()


def mail_channel(tenant: Tenant, port: int, security: str, **extra: Any) -> dict[str, Any]:
    body = {
        "displayName": f"Mail {security}",
        "channelType": "email",
        "smtpHost": "127.0.0.1",
        "smtpPort": port,
        "smtpSecurity": security,
        "smtpUsername": USER,
        "secret": PASSWORD,
        "fromAddress": "countersign@contoso.example",
        "toAddresses": ["ops@contoso.example"],
        **extra,
    }
    created: dict[str, Any] = tenant.ok("POST", CHANNELS, json=body)
    return created


def send_test(tenant: Tenant, channel: dict[str, Any]) -> Any:
    return tenant.call("POST", f"{CHANNELS}/{channel['id']}/sendTestMessage")


@pytest.fixture()
def tenant(tenants: TenantFactory) -> Iterator[Tenant]:
    tenant = tenants()
    yield tenant
    for channel in tenant.ok("GET", CHANNELS)["value"]:
        tenant.ok("DELETE", f"{CHANNELS}/{channel['id']}")


def test_starttls_with_login_verifies_the_server_against_the_channel_ca(
    tenant: Tenant, certificates: Certificates
) -> None:
    with smtp_receiver(starttls=certificates.server_context, login=(USER, PASSWORD)) as smtp:
        channel = mail_channel(tenant, smtp.port, "starttls", smtpCaCertificate=certificates.ca_pem)
        assert channel["smtpCaCertificate"] == certificates.ca_pem.strip()  # public: readable
        answer = send_test(tenant, channel)
    assert answer.status_code == 200, answer.text
    (mail,) = smtp.mails
    assert mail.tls and mail.login == USER and mail.recipients == ["ops@contoso.example"]
    assert mail.message["Subject"] == "Countersign test message"
    assert smtp.logins == [(USER, True)]


def test_implicit_tls_with_login_delivers_outbox_messages(
    tenant: Tenant, certificates: Certificates, db: Database, settings: Settings
) -> None:
    approver = tenant.user("tls-approver")
    with smtp_receiver(implicit_tls=certificates.server_context, login=(USER, PASSWORD)) as smtp:
        channel = mail_channel(tenant, smtp.port, "tls", smtpCaCertificate=certificates.ca_pem)
        assert send_test(tenant, channel).status_code == 200
        request_id = insert_request(
            db, tenant, expires=later(30 * 86400), name="VPN profile", lock=False
        )
        enqueue_for(db, request_id, "submitted", [approver.id])
        Worker(db, settings).run_once(now=later(1))
    test_mail, submitted = smtp.mails
    assert test_mail.tls and submitted.tls and submitted.login == USER
    assert submitted.recipients == [approver.upn]
    assert "VPN profile" in submitted.message["Subject"]
    (message,) = messages_of(db, request_id)
    assert message.status == "delivered"


@pytest.mark.parametrize("security", ["starttls", "tls"])
def test_a_certificate_from_an_unknown_ca_is_refused_by_default(
    tenant: Tenant, certificates: Certificates, security: str
) -> None:
    context = certificates.server_context
    with smtp_receiver(
        starttls=context if security == "starttls" else None,
        implicit_tls=context if security == "tls" else None,
        login=(USER, PASSWORD),
    ) as smtp:
        channel = mail_channel(tenant, smtp.port, security)  # no smtpCaCertificate
        answer = send_test(tenant, channel)
    assert answer.status_code == 502
    assert "CERTIFICATE_VERIFY_FAILED" in answer.json()["error"]["message"]
    assert smtp.mails == [] and smtp.logins == []  # the password never left


def test_a_wrong_password_is_reported_without_echoing_it(
    tenant: Tenant, certificates: Certificates
) -> None:
    with smtp_receiver(starttls=certificates.server_context, login=(USER, "the-right-one")) as smtp:
        channel = mail_channel(tenant, smtp.port, "starttls", smtpCaCertificate=certificates.ca_pem)
        answer = send_test(tenant, channel)
    assert answer.status_code == 502
    message = answer.json()["error"]["message"]
    assert "SMTPAuthenticationError" in message and PASSWORD not in message
    assert smtp.mails == [] and smtp.logins and set(smtp.logins) == {(USER, False)}


def test_a_server_that_requires_starttls_refuses_a_plain_session(
    tenant: Tenant, certificates: Certificates
) -> None:
    with smtp_receiver(starttls=certificates.server_context) as smtp:
        answer = send_test(tenant, mail_channel(tenant, smtp.port, "none", smtpUsername=None))
    assert answer.status_code == 502 and smtp.mails == []


def test_the_ca_certificate_must_be_pem(tenant: Tenant, certificates: Certificates) -> None:
    for bad in (
        "not a certificate",
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----",
    ):
        refused = tenant.call(
            "POST",
            CHANNELS,
            json={
                "displayName": "Mail",
                "channelType": "email",
                "smtpHost": "127.0.0.1",
                "smtpSecurity": "tls",
                "fromAddress": "countersign@contoso.example",
                "smtpCaCertificate": bad,
            },
        )
        assert refused.status_code == 400, bad
        assert "smtpCaCertificate" in refused.json()["error"]["message"]
    channel = mail_channel(tenant, 465, "tls")
    tenant.ok(
        "PATCH",
        f"{CHANNELS}/{channel['id']}",
        json={"smtpCaCertificate": certificates.ca_pem},
    )
    stored = tenant.ok("GET", f"{CHANNELS}/{channel['id']}")
    assert stored["smtpCaCertificate"] == certificates.ca_pem.strip() and stored["hasSecret"]
