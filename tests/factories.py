"""Test data through the real services: make_organization(), make_api_key(), make_customer()."""

from __future__ import annotations

import itertools
import uuid
from typing import Any

from billing.models import Customer, Organization
from billing.services import audit
from billing.services.customers import upsert_customer
from billing.services.organizations import create_api_key, create_organization

TEST_ACTOR = audit.Actor(type="system", source="system", label="tests")
_sequence = itertools.count(1)


def make_organization(name: str | None = None, **attributes: Any) -> Organization:
    organization = create_organization(name or f"Test Org {uuid.uuid4().hex[:10]}")
    for key, value in attributes.items():
        setattr(organization, key, value)
    return organization


def make_api_key(organization: Organization) -> str:
    _key, raw_key = create_api_key(organization, TEST_ACTOR)
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
    return customer
