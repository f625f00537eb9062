"""Rate limits on console login and inbound hooks, counted in the database."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from flask import jsonify
from sqlalchemy import func, select

from app import create_app
from billing.models import Customer, RateLimitCounter
from billing.services.rate_limits import InvalidLimit, Limit
from billing.timeutil import set_clock
from config import Config
from extensions import csrf, db
from jobs.rate_limits import run_rate_limit_purge
from tests import factories
from tests.conftest import TEST_CONFIG
from tests.factories import AGENT_PASSWORD
from tests.test_inbound_hooks import send

NOW = datetime(2026, 3, 2, 10, 0, 5, tzinfo=UTC)


@pytest.fixture
def limits(app: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Rate limits on (tests run with them off), small enough to reach, at a frozen time."""
    monkeypatch.setitem(app.config, "RATE_LIMITS_ENABLED", True)
    monkeypatch.setitem(app.config, "RATE_LIMIT_LOGIN", "3/minute")
    monkeypatch.setitem(app.config, "RATE_LIMIT_HOOKS", "2/minute")
    set_clock(lambda: NOW)
    return app.config


def log_in(client: Any, email: str, password: str, address: str = "10.0.0.1") -> Any:
    page = client.get("/login")
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page.text).group(1)
    return client.post(
        "/login",
        data={"csrf_token": token, "email": email, "password": password},
        environ_base={"REMOTE_ADDR": address},
    )


@pytest.mark.parametrize(
    ("text", "count", "seconds"),
    [
        ("10/minute", 10, 60),
        ("120/minute", 120, 60),
        ("1000 / hour", 1000, 3600),
        ("5/seconds", 5, 1),
        ("50/10minutes", 50, 600),
        ("2/DAY", 2, 86400),
    ],
)
def test_limit_settings_are_count_per_period(text: str, count: int, seconds: int) -> None:
    assert Limit.parse(text) == Limit(count, seconds)


@pytest.mark.parametrize("text", ["", "10", "ten/minute", "10/fortnight", "0/minute", "10/0hour"])
def test_a_bad_limit_setting_is_refused_at_start_with_its_name(text: str, tmp_path: Any) -> None:
    with pytest.raises(InvalidLimit):
        Limit.parse(text)
    if text:  # (empty means "the default" in the environment)
        with pytest.raises(RuntimeError, match="RATE_LIMIT_HOOKS"):
            create_app(
                {
                    **TEST_CONFIG,
                    "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'x.db'}",
                    "RATE_LIMIT_HOOKS": text,
                }
            )


# --- console login ------------------------------------------------------------------------------


def test_login_attempts_per_email_are_limited_even_with_the_right_password(
    client: Any, org: Any, limits: Any
) -> None:
    agent = factories.make_agent(org, "support", email="rita@limits.test")
    for address in ("10.0.0.1", "10.0.0.2", "10.0.0.3"):  # three addresses: only the e-mail counts
        assert log_in(client, agent.email, "wrong", address).status_code == 401

    refused = log_in(client, agent.email, AGENT_PASSWORD, "10.0.0.4")

    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == "55"  # the minute's window ends at 10:01:00
    field = re.search(r'id="field-email".*?</div>', refused.text, re.S).group(0)
    assert "Too many sign-in attempts. Try again in 55 seconds." in field
    assert client.get("/").status_code == 302  # still signed out

    set_clock(lambda: NOW + timedelta(seconds=55))  # the next window
    assert log_in(client, agent.email, AGENT_PASSWORD, "10.0.0.4").status_code == 302


def test_login_attempts_per_address_are_limited_across_emails(
    client: Any, org: Any, limits: Any
) -> None:
    agent = factories.make_agent(org, "support", email="ivo@limits.test")
    for n in range(3):
        assert log_in(client, f"guess{n}@limits.test", "x", "192.0.2.9").status_code == 401

    assert log_in(client, agent.email, AGENT_PASSWORD, "192.0.2.9").status_code == 429
    # another address is not held back by that one
    assert log_in(client, agent.email, AGENT_PASSWORD, "192.0.2.10").status_code == 302


def test_login_is_not_limited_when_rate_limits_are_off(
    client: Any, org: Any, limits: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(limits, "RATE_LIMITS_ENABLED", False)
    for n in range(5):
        assert log_in(client, f"guess{n}@limits.test", "x").status_code == 401
    assert db.session.scalar(select(func.count()).select_from(RateLimitCounter)) == 0


def test_reset_link_requests_are_limited_per_email_apart_from_sign_ins(
    client: Any, org: Any, limits: Any
) -> None:
    agent = factories.make_agent(org, "support", email="noor@limits.test")

    def ask(address: str) -> Any:
        page = client.get("/forgot-password")
        token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page.text).group(1)
        return client.post(
            "/forgot-password",
            data={"csrf_token": token, "email": agent.email},
            environ_base={"REMOTE_ADDR": address},
        )

    for address in ("10.0.1.1", "10.0.1.2", "10.0.1.3"):
        assert ask(address).status_code == 200
    refused = ask("10.0.1.4")

    assert refused.status_code == 429
    assert "Too many requests. Try again in 55 seconds." in refused.text
    # a separate budget: the agent can still sign in
    assert log_in(client, agent.email, AGENT_PASSWORD, "10.0.1.4").status_code == 302


# --- inbound hooks ------------------------------------------------------------------------------


def test_hooks_answer_429_in_lagos_shape_with_rate_limit_headers(
    client: Any, org: Any, limits: Any
) -> None:
    first = send(client, org, {"customer": {"external_id": "a"}}, delivery="d-1")
    second = send(client, org, {"customer": {"external_id": "b"}}, delivery="d-2")
    third = send(client, org, {"customer": {"external_id": "c"}}, delivery="d-3")

    assert [first.status_code, second.status_code] == [201, 201]
    assert first.headers["x-ratelimit-limit"] == "2"
    assert first.headers["x-ratelimit-remaining"] == "1"
    assert second.headers["x-ratelimit-remaining"] == "0"
    assert third.status_code == 429
    assert third.get_json() == {
        "status": 429,
        "error": "Too Many Requests",
        "code": "too_many_requests",
    }
    assert third.headers["x-ratelimit-remaining"] == "0"
    assert third.headers["x-ratelimit-reset"] == "55"
    assert third.headers["Retry-After"] == "55"
    assert third.headers["Content-Security-Policy"]  # still a full response
    created = db.session.scalars(
        select(Customer.external_id).where(Customer.organization_id == org.id)
    )
    assert set(created) == {"a", "b"}  # the refused request changed nothing


def test_hook_counters_are_per_organization_and_address(client: Any, limits: Any) -> None:
    one, two = factories.make_organization(), factories.make_organization()
    db.session.commit()
    for n in range(2):
        assert (
            send(client, one, {"customer": {"external_id": f"o{n}"}}, delivery=f"o{n}").status_code
            == 201
        )
    assert send(client, one, {"customer": {"external_id": "o9"}}, delivery="o9").status_code == 429
    # the other organization, from the same address, has its own budget
    assert send(client, two, {"customer": {"external_id": "t0"}}, delivery="t0").status_code == 201
    # so does the first organization from another address
    other = client.post(
        "/hooks/customers", data=b"{}", environ_base={"REMOTE_ADDR": "198.51.100.7"},
        headers={"X-Ledgerline-Organization": str(one.lago_id)},
    )  # fmt: skip
    assert other.status_code == 401  # reached the signature check


def test_unsigned_and_unknown_hook_requests_count_too(client: Any, org: Any, limits: Any) -> None:
    headers = {"X-Ledgerline-Organization": str(org.lago_id)}
    assert client.post("/hooks/customers", data=b"{}", headers=headers).status_code == 401
    assert client.post("/hooks/no-such-hook", data=b"{}", headers=headers).status_code == 404
    assert client.post("/hooks/customers", data=b"{}", headers=headers).status_code == 429


def test_a_hook_route_added_later_is_limited_without_any_code_of_its_own(
    database_url: str,
) -> None:
    """Another capability's hook (say /hooks/stripe) gets the limit by living under /hooks/."""
    app = create_app(
        {
            **TEST_CONFIG,
            "SQLALCHEMY_DATABASE_URI": database_url,
            "RATE_LIMITS_ENABLED": True,
            "RATE_LIMIT_HOOKS": "1/hour",
        }
    )

    def brand_new() -> Any:
        return jsonify(ok=True)

    app.add_url_rule("/hooks/brand-new", view_func=csrf.exempt(brand_new), methods=["POST"])
    client = app.test_client()
    address = {"REMOTE_ADDR": f"203.0.113.{uuid.uuid4().int % 250}"}
    sender = {"X-Ledgerline-Organization": uuid.uuid4().hex}  # a key of this test's own
    try:
        assert client.post("/hooks/brand-new", headers=sender, environ_base=address).json == {
            "ok": True
        }
        refused = client.post("/hooks/brand-new", headers=sender, environ_base=address)
        assert refused.status_code == 429
        assert refused.json["code"] == "too_many_requests"
    finally:
        with app.app_context():
            db.session.execute(
                RateLimitCounter.__table__.delete().where(
                    RateLimitCounter.key.like(f"hooks:{sender['X-Ledgerline-Organization']}:%")
                )
            )
            db.session.commit()
            db.engine.dispose()


def test_hooks_are_not_limited_when_rate_limits_are_off(client: Any, org: Any) -> None:
    for n in range(4):
        response = send(client, org, {"customer": {"external_id": f"x{n}"}}, delivery=f"x{n}")
        assert response.status_code == 201
        assert "x-ratelimit-limit" not in response.headers


@pytest.mark.live
def test_two_server_processes_share_one_budget(
    live_server: Any, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two app instances (as two gunicorn workers) on one database count in the same row."""
    monkeypatch.setitem(live_server.app.config, "RATE_LIMITS_ENABLED", True)
    monkeypatch.setitem(live_server.app.config, "RATE_LIMIT_HOOKS", "3/hour")
    other = create_app(
        {
            **TEST_CONFIG,
            "SQLALCHEMY_DATABASE_URI": database_url,
            "RATE_LIMITS_ENABLED": True,
            "RATE_LIMIT_HOOKS": "3/hour",
        }
    ).test_client()
    sender = {"X-Ledgerline-Organization": uuid.uuid4().hex, "Content-Type": "application/json"}
    statuses = []
    try:
        for n in range(4):
            if n % 2:
                answer = other.post("/hooks/customers", data=b"{}", headers=sender)
            else:
                url = f"{live_server.url}/hooks/customers"
                answer = httpx.post(url, content=b"{}", headers=sender)
            statuses.append(answer.status_code)
    finally:
        with live_server.app.app_context():
            db.session.execute(
                RateLimitCounter.__table__.delete().where(
                    RateLimitCounter.key.like(f"hooks:{sender['X-Ledgerline-Organization']}:%")
                )
            )
            db.session.commit()
    assert statuses == [401, 401, 401, 429]


# --- cleaning up --------------------------------------------------------------------------------


def test_the_purge_job_deletes_ended_windows_only(client: Any, org: Any, limits: Any) -> None:
    send(client, org, {"customer": {"external_id": "a"}}, delivery="d-1")
    log_in(client, "someone@limits.test", "x")
    keys = set(db.session.scalars(select(RateLimitCounter.key)))
    assert {key.split(":")[0] + ":" + key.split(":")[1] for key in keys} >= {
        f"hooks:{org.lago_id}",
        "login:email",
        "login:ip",
    }
    assert not any("someone@limits.test" in key for key in keys)  # e-mails are hashed

    run_rate_limit_purge()
    assert set(db.session.scalars(select(RateLimitCounter.key))) == keys  # windows still open
    set_clock(lambda: NOW + timedelta(minutes=1))
    assert run_rate_limit_purge() >= 3
    left = set(db.session.scalars(select(RateLimitCounter.key)))
    assert not keys & left, (keys, left)


def test_a_new_window_restarts_the_count_in_the_same_row(
    client: Any, org: Any, limits: Any
) -> None:
    for n in range(2):
        send(client, org, {"customer": {"external_id": f"a{n}"}}, delivery=f"a{n}")
    assert send(client, org, {"customer": {"external_id": "a9"}}, delivery="a9").status_code == 429
    set_clock(lambda: NOW + timedelta(minutes=1))
    again = send(client, org, {"customer": {"external_id": "a9"}}, delivery="a9b")
    assert again.status_code == 201
    assert again.headers["x-ratelimit-remaining"] == "1"
    assert db.session.scalar(select(func.count()).select_from(RateLimitCounter)) == 1


@pytest.mark.parametrize(
    ("environ", "enabled", "login", "hooks", "proxies"),
    [
        ({}, True, "10/minute", "120/minute", 0),
        ({"RATE_LIMITS_ENABLED": "0"}, False, "10/minute", "120/minute", 0),
        (
            {"RATE_LIMITS_ENABLED": "off", "TRUSTED_PROXIES": "1"},
            False, "10/minute", "120/minute", 1,
        ),
        (
            {"RATE_LIMIT_LOGIN": "5/hour", "RATE_LIMIT_HOOKS": "1000/minute"},
            True, "5/hour", "1000/minute", 0,
        ),
    ],
)  # fmt: skip
def test_the_settings_come_from_the_environment(
    environ: dict[str, str], enabled: bool, login: str, hooks: str, proxies: int
) -> None:
    config = Config(environ)
    assert config.RATE_LIMITS_ENABLED is enabled
    assert (login, hooks) == (config.RATE_LIMIT_LOGIN, config.RATE_LIMIT_HOOKS)
    assert proxies == config.TRUSTED_PROXIES
