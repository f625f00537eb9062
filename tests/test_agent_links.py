"""Agents by e-mail: invitations and password resets through signed, expiring, single-use links,
received by a real SMTP server; a reset request never reveals whether an address is an agent's."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from billing.models import Agent, Email
from billing.services import agent_links
from billing.services.logins import LoginRefused, log_in
from extensions import db
from jobs.mail import run_mail_delivery
from tests import factories
from tests.factories import AGENT_PASSWORD
from tests.mail_helpers import SmtpServer, body_of, links_in

NEW_PASSWORD = "a brand new passphrase"


#: where the `clock` fixture (tests/conftest.py) stops the clock
CLOCK_START = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def smtp(org: Any) -> Iterator[SmtpServer]:
    server = SmtpServer()
    server.controller.start()
    server.configure(org)
    try:
        yield server
    finally:
        server.controller.stop()


def csrf(client: Any, path: str) -> str:
    page = client.get(path)
    return re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page.text).group(1)


def link_path(smtp: SmtpServer, kind: str) -> str:
    """The path of the link in the latest message received."""
    run_mail_delivery()
    body = body_of(smtp.inbox.messages[-1])
    [link] = [url for url in links_in(body) if f"/{kind}/" in url]
    return link.removeprefix("http://testserver")


def choose(client: Any, path: str, password: str, confirm: str | None = None) -> Any:
    token = csrf(client, path)
    return client.post(
        path, data={"csrf_token": token, "password": password, "confirm": confirm or password}
    )


def can_log_in(email: str, password: str) -> bool:
    try:
        log_in(email, password, "10.9.9.9")
    except LoginRefused:
        return False
    return True


def test_an_invited_agent_chooses_a_password_once_and_signs_in(
    agent_client, client, org, clock, smtp
):
    response = agent_client.post(
        "/settings/agents/invite", data={"email": "Nina@Agents.test", "role": "support"}
    )
    assert response.status_code == 302
    agent = db.session.scalar(select(Agent).where(Agent.email == "nina@agents.test"))
    assert agent.invited_at is not None
    assert "invitation pending" in agent_client.get("/settings/agents").text

    path = link_path(smtp, "invitation")
    assert smtp.inbox.messages[-1]["To"] == "nina@agents.test"
    page = client.get(path)
    assert page.status_code == 200 and "nina@agents.test" in page.text

    mismatch = choose(client, path, NEW_PASSWORD, "something else")
    assert mismatch.status_code == 422 and "differ" in mismatch.text
    assert choose(client, path, "short").status_code == 422

    done = choose(client, path, NEW_PASSWORD)
    assert done.status_code == 302 and done.headers["Location"] == "/login"
    assert can_log_in("nina@agents.test", NEW_PASSWORD)
    assert client.get(path).status_code == 404  # used: the link is dead
    assert db.session.get_one(Agent, agent.id).invited_at is None


def test_an_invitation_expires_after_seven_days(agent_client, client, org, clock, smtp):
    agent_client.post(
        "/settings/agents/invite", data={"email": "late@agents.test", "role": "viewer"}
    )
    path = link_path(smtp, "invitation")
    clock[0] += timedelta(days=7, seconds=1)
    response = client.get(path)
    assert response.status_code == 410 and "expired" in response.text


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"email": "not-an-address", "role": "support"}, "Enter a valid e-mail address."),
        ({"email": "x@agents.test", "role": "owner"}, "Choose a role from the list."),
    ],
)
def test_bad_invitations_show_field_messages(agent_client, org, data, message):
    response = agent_client.post("/settings/agents/invite", data=data)
    assert response.status_code == 422 and message in response.text


def test_inviting_an_existing_agent_is_refused(agent_client, org):
    response = agent_client.post(
        "/settings/agents/invite", data={"email": agent_client.agent.email, "role": "support"}
    )
    assert response.status_code == 422
    assert "already signs in with this e-mail" in response.text


def test_a_reset_request_looks_the_same_whether_or_not_the_address_is_an_agents(
    client, org, clock, smtp
):
    agent = factories.make_agent(org, "support", email="sam@agents.test")
    answers = []
    for address in ("sam@agents.test", "nobody@agents.test"):
        token = csrf(client, "/forgot-password")
        response = client.post("/forgot-password", data={"csrf_token": token, "email": address})
        answers.append((response.status_code, response.text.replace(token, "")))
    assert answers[0] == answers[1]
    assert answers[0][0] == 200 and "If an active agent signs in" in answers[0][1]
    queued = db.session.scalars(select(Email).where(Email.agent_id.is_not(None))).all()
    assert [email.agent_id for email in queued] == [agent.id]


def test_a_reset_link_works_once_and_the_old_password_stops_working(client, org, clock, smtp):
    factories.make_agent(org, "support", email="sam@agents.test")
    agent_links.request_password_reset("SAM@agents.test")
    db.session.commit()
    path = link_path(smtp, "reset-password")

    assert choose(client, path, NEW_PASSWORD).status_code == 302
    assert can_log_in("sam@agents.test", NEW_PASSWORD)
    assert not can_log_in("sam@agents.test", AGENT_PASSWORD)
    reused = client.get(path)
    assert reused.status_code == 404 and "not valid" in reused.text
    sent = db.session.scalar(select(Email).where(Email.kind == "password_reset"))
    assert sent.status == "sent" and sent.body_text is None  # the link is not kept


def test_a_reset_link_expires_after_an_hour(client, org, clock, smtp):
    factories.make_agent(org, "support", email="sam@agents.test")
    agent_links.request_password_reset("sam@agents.test")
    db.session.commit()
    path = link_path(smtp, "reset-password")
    clock[0] += timedelta(hours=1, seconds=1)
    assert client.get(path).status_code == 410


def test_a_tampered_link_or_an_invitation_used_as_a_reset_is_refused(
    agent_client, client, org, clock, smtp
):
    agent_client.post(
        "/settings/agents/invite", data={"email": "nina@agents.test", "role": "support"}
    )
    path = link_path(smtp, "invitation")
    token = path.rsplit("/", 1)[1]
    assert client.get(f"/reset-password/{token}").status_code == 404
    tampered = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    assert client.get(f"/invitation/{tampered}").status_code == 404
    assert client.get("/invitation/not-a-token").status_code == 404


def test_a_deactivated_agent_gets_no_reset_link(client, org, clock):
    agent = factories.make_agent(org, "support", email="gone@agents.test")
    agent.is_active = False
    db.session.commit()
    agent_links.request_password_reset("gone@agents.test")
    db.session.commit()
    assert db.session.scalars(select(Email).where(Email.agent_id == agent.id)).all() == []


def test_the_login_page_links_to_the_password_reset(client):
    assert 'href="/forgot-password"' in client.get("/login").text
