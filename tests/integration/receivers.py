"""Local receivers for notification tests: an SMTP server (aiosmtpd; plain, STARTTLS or implicit
TLS, optionally with login) and an HTTP server, both on 127.0.0.1, recording what they get."""

from __future__ import annotations

import ipaddress
import json
import socket
import ssl
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    status: int

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class HttpReceiver:
    """Answers each path with the statuses scripted for it, in turn (the last one repeats);
    200 when none are scripted."""

    url: str
    received: list[Received] = field(default_factory=list)
    script: dict[str, list[int]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def at(self, path: str) -> list[Received]:
        with self.lock:
            return [r for r in self.received if r.path == path]

    def next_status(self, path: str) -> int:
        statuses = self.script.get(path)
        if not statuses:
            return 200
        return statuses.pop(0) if len(statuses) > 1 else statuses[0]


@contextmanager
def http_receiver() -> Iterator[HttpReceiver]:
    receiver: HttpReceiver

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            with receiver.lock:
                status = receiver.next_status(self.path)
                receiver.received.append(
                    Received(
                        self.path, {k.lower(): v for k, v in self.headers.items()}, body, status
                    )
                )
            self.send_response(status)
            self.send_header("content-length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver = HttpReceiver(f"http://127.0.0.1:{server.server_address[1]}")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class SmtpMail:
    recipients: list[str]
    message: Message
    tls: bool  # the session was encrypted (STARTTLS or implicit TLS)
    login: str | None  # the user name it logged in with


@dataclass
class SmtpReceiver:
    host: str
    port: int
    messages: list[tuple[list[str], Message]] = field(default_factory=list)
    mails: list[SmtpMail] = field(default_factory=list)
    logins: list[tuple[str, bool]] = field(default_factory=list)  # (user name, accepted)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = message_from_bytes(envelope.content)
        self.messages.append((list(envelope.rcpt_tos), message))
        tls = session.ssl is not None or server.transport.get_extra_info("ssl_object") is not None
        login = session.login_data.decode() if session.login_data else None
        self.mails.append(SmtpMail(list(envelope.rcpt_tos), message, tls, login))
        return "250 Message accepted for delivery"


@dataclass(frozen=True)
class Certificates:
    """A private CA and a server certificate it signed for 127.0.0.1 and localhost."""

    ca_pem: str
    server_context: ssl.SSLContext


def private_ca_certificates() -> Certificates:
    """Generated now, with `cryptography`; nothing outside the test trusts the CA."""
    now = datetime.now(UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Countersign test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with tempfile.TemporaryDirectory() as directory:  # load_cert_chain reads files only
        chain, private = Path(directory, "chain.pem"), Path(directory, "key.pem")
        chain.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
        private.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        context.load_cert_chain(chain, private)
    return Certificates(ca.public_bytes(serialization.Encoding.PEM).decode(), context)


WEBHOOK_SECRET = "s3cret-key-for-hmac-0123456789"


def channel_bodies(smtp: SmtpReceiver, http: HttpReceiver) -> list[dict[str, Any]]:
    """A channel of each kind, each to a receiver: e-mail, a webhook at /hook signed with
    WEBHOOK_SECRET, Slack at /slack, Teams at /teams."""
    return [
        {
            "displayName": "Mail",
            "channelType": "email",
            "smtpHost": smtp.host,
            "smtpPort": smtp.port,
            "fromAddress": "countersign@contoso.example",
        },
        {
            "displayName": "Hook",
            "channelType": "webhook",
            "url": f"{http.url}/hook",
            "secret": WEBHOOK_SECRET,
        },
        *(
            {"displayName": kind, "channelType": kind, "url": f"{http.url}/{kind}"}
            for kind in ("slack", "teams")
        ),
    ]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextmanager
def smtp_receiver(
    *,
    starttls: ssl.SSLContext | None = None,
    implicit_tls: ssl.SSLContext | None = None,
    login: tuple[str, str] | None = None,
) -> Iterator[SmtpReceiver]:
    """A plain SMTP server; with `starttls` it offers and requires STARTTLS, with
    `implicit_tls` it speaks TLS from the first byte (SMTPS); with `login` it requires
    AUTH with that user name and password (over TLS only)."""
    receiver = SmtpReceiver("127.0.0.1", _free_port())
    options: dict[str, Any] = {}
    if starttls is not None:
        options.update(tls_context=starttls, require_starttls=True)
    if login is not None:

        def authenticator(
            _server: Any, _session: Any, _envelope: Any, _mechanism: str, data: Any
        ) -> AuthResult:
            accepted = (
                isinstance(data, LoginPassword)
                and (
                    data.login.decode(),
                    data.password.decode(),
                )
                == login
            )
            receiver.logins.append((data.login.decode() if data else "", accepted))
            # handled=False: aiosmtpd sends the 235 or 535 answer itself.
            return AuthResult(success=accepted, handled=False, auth_data=data if accepted else None)

        # aiosmtpd counts only STARTTLS as TLS: on an implicit-TLS server it would never offer
        # AUTH although the whole session is encrypted, so there AUTH is offered but not
        # required (requiring it without TLS warns); the tests check who logged in instead.
        starttls_only = implicit_tls is None
        options.update(
            authenticator=authenticator,
            auth_required=starttls_only,
            auth_require_tls=starttls_only,
        )
    controller = Controller(
        receiver,
        hostname=receiver.host,
        port=receiver.port,
        ssl_context=implicit_tls,
        server_hostname="localhost",
        **options,
    )
    controller.start()
    try:
        yield receiver
    finally:
        controller.stop()
