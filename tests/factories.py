"""Test data through the real services: make_organization(), make_api_key(), make_customer().

Each factory commits (inside a test: releases a savepoint of the test's transaction, which is
still rolled back at the end), so a view that rolls back after an error cannot take the
test's set-up with it, and "nothing was written" checks compare against real data.
"""

from __future__ import annotations

import itertools
import uuid
from typing import Any

from billing.models import Agent, Customer, Organization
from billing.services import audit
from billing.services.customers import upsert_customer
from billing.services.organizations import create_agent, create_api_key, create_organization
from extensions import db

TEST_ACTOR = audit.Actor(type="system", source="system", label="tests")
_sequence = itertools.count(1)


def make_organization(name: str | None = None, **attributes: Any) -> Organization:
    organization = create_organization(name or f"Test Org {uuid.uuid4().hex[:10]}")
    for key, value in attributes.items():
        setattr(organization, key, value)
    db.session.commit()
    return organization


def make_api_key(organization: Organization) -> str:
    _key, raw_key = create_api_key(organization, TEST_ACTOR)
    db.session.commit()
    return raw_key


def make_customer(organization: Organization, **overrides: Any) -> Customer:
    n = next(_sequence)
    payload: dict[str, Any] = {
        "external_id": f"cust-{n}",
        "name": f"Customer {n}",
        "email": f"billing{n}@example.com",
        **overrides,
    }
    customer, _created = upsert_customer(organization, payload, TEST_ACTOR)
    db.session.commit()
    return customer


AGENT_PASSWORD = "correct horse battery"


def make_agent(organization: Organization, role: str = "admin", email: str | None = None) -> Agent:
    agent = create_agent(
        organization,
        email or f"{role}-{uuid.uuid4().hex[:8]}@agents.test",
        role,
        AGENT_PASSWORD,
        TEST_ACTOR,
    )
    db.session.commit()
    return agent


def db_scalar(query: Any) -> Any:
    """One value from the test's database session (what the pages wrote)."""
    return db.session.scalar(query)
