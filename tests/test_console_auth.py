"""Signing in and out of the console, and what protects it."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from billing.models import Customer
from billing.timeutil import set_clock
from tests import factories
from tests.factories import AGENT_PASSWORD


def login_form_token(client):
    page = client.get("/login")
    return re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page.text).group(1)


def log_in(client, email, password, address="10.0.0.1"):
    return client.post(
        "/login",
        data={"csrf_token": login_form_token(client), "email": email, "password": password},
        environ_base={"REMOTE_ADDR": address},
    )


@pytest.fixture
def agent(org):
    return factories.make_agent(org, "support", email="sam@support.test")


def test_login_lands_on_the_dashboard_and_logout_needs_a_post(client, agent):
    response = log_in(client, "SAM@support.test", AGENT_PASSWORD)

    assert response.status_code == 302
    assert response.headers["Location"] == "/"
    dashboard = client.get("/")
    assert "sam@support.test" in dashboard.text
    assert client.get("/logout").status_code == 405
    token = re.search(r'name="csrf_token" value="([^"]+)"', dashboard.text).group(1)
    client.post("/logout", data={"csrf_token": token})
    assert client.get("/").headers["Location"].startswith("/login")


def test_wrong_password_is_refused_without_saying_which_part_was_wrong(client, agent):
    wrong_password = log_in(client, "sam@support.test", "nope")
    unknown_email = log_in(client, "nobody@support.test", "nope")

    for response in (wrong_password, unknown_email):
        assert response.status_code == 401
        assert "Wrong e-mail or password." in response.text


def test_login_goes_back_to_the_page_asked_for_but_never_off_site(client, agent):
    token = login_form_token(client)
    response = client.post(
        "/login?next=/customers?q=acme",
        data={"csrf_token": token, "email": "sam@support.test", "password": AGENT_PASSWORD},
    )
    assert response.headers["Location"] == "/customers?q=acme"

    other = factories.make_agent(agent.organization, "viewer")
    client2 = client.application.test_client()
    token = login_form_token(client2)
    response = client2.post(
        "/login?next=//evil.test/phish",
        data={"csrf_token": token, "email": other.email, "password": AGENT_PASSWORD},
    )
    assert response.headers["Location"] == "/"


def test_repeated_failures_slow_down_the_account_even_with_the_right_password(client, agent):
    t0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
    set_clock(lambda: t0)
    for _ in range(5):
        assert log_in(client, "sam@support.test", "wrong").status_code == 401

    locked = log_in(client, "sam@support.test", AGENT_PASSWORD, address="10.9.9.9")
    assert locked.status_code == 429
    assert "Too many failed attempts. Try again in 30 seconds." in locked.text

    set_clock(lambda: t0 + timedelta(seconds=31))
    assert log_in(client, "sam@support.test", AGENT_PASSWORD).status_code == 302


def test_lockouts_grow_and_are_forgotten_after_an_hour(client, agent):
    t0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
    set_clock(lambda: t0)
    for _ in range(5):
        log_in(client, "sam@support.test", "wrong")
    set_clock(lambda: t0 + timedelta(seconds=31))
    assert log_in(client, "sam@support.test", "wrong").status_code == 401  # 6th: 60 s now
    set_clock(lambda: t0 + timedelta(seconds=76))
    assert "Try again in 15 seconds" in log_in(client, "sam@support.test", "x").text

    set_clock(lambda: t0 + timedelta(hours=2))
    assert log_in(client, "sam@support.test", "wrong").status_code == 401  # counted from 1 again
    assert log_in(client, "sam@support.test", AGENT_PASSWORD).status_code == 302


def test_one_address_failing_on_many_accounts_is_slowed_down(client, org):
    for i in range(20):
        log_in(client, f"guess{i}@support.test", "wrong", address="203.0.113.7")
    blocked = log_in(client, "another@support.test", "wrong", address="203.0.113.7")
    elsewhere = log_in(client, "another@support.test", "wrong", address="198.51.100.1")
    assert blocked.status_code == 429
    assert elsewhere.status_code == 401


def test_a_deactivated_agent_can_neither_log_in_nor_keep_a_session(client, agent):
    log_in(client, "sam@support.test", AGENT_PASSWORD)
    agent.is_active = False

    assert client.get("/").headers["Location"].startswith("/login")
    assert (
        log_in(client.application.test_client(), "sam@support.test", AGENT_PASSWORD).status_code
        == 401
    )


def test_session_cookie_is_http_only_and_same_site(client, agent):
    response = log_in(client, "sam@support.test", AGENT_PASSWORD)
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie


def test_a_forged_csrf_token_writes_nothing(agent_client):
    response = agent_client.post(
        "/customers/new", data={"name": "Forged", "csrf_token": "forged"}, csrf=False
    )
    assert response.status_code == 400
    assert factories.db_scalar(select(Customer).where(Customer.name == "Forged")) is None
