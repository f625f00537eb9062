"""A real SMTP server for the e-mail tests (aiosmtpd), and helpers to read what it received."""

from __future__ import annotations

import re
import socket
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller

from billing.models import Organization
from extensions import db


class Inbox:
    """aiosmtpd handler keeping every accepted message; `refuse` answers the next n messages
    with a temporary failure (451), `reject` with a permanent one (550)."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.refuse = 0
        self.reject = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        if self.reject:
            self.reject -= 1
            return "550 5.7.1 Message rejected"
        if self.refuse:
            self.refuse -= 1
            return "451 4.3.0 Try again later"
        message = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(message, EmailMessage)
        self.messages.append(message)
        return "250 Message accepted"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class SmtpServer:
    def __init__(self) -> None:
        self.inbox = Inbox()
        self.port = free_port()
        self.controller = Controller(self.inbox, hostname="127.0.0.1", port=self.port)

    def configure(self, organization: Organization) -> None:
        """Point the organization at this server (plain SMTP, no login)."""
        organization.smtp_host = "127.0.0.1"
        organization.smtp_port = self.port
        organization.smtp_security = "none"
        organization.mail_from_address = "billing@seller.test"
        db.session.commit()


def body_of(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())


def attachments_of(message: EmailMessage) -> list[tuple[str, bytes]]:
    return [(str(part.get_filename()), part.get_content()) for part in message.iter_attachments()]


def links_in(text: str) -> list[str]:
    return re.findall(r"https?://\S+", text)
