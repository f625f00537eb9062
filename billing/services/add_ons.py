"""Add-ons: create, update, soft delete, lookup and listing (lago-api.md §11).

Input is Lago's `add_on` payload as a plain dict (the API and the console build the same
dicts). Lago sends no webhook for add-ons, so changes go to the audit trail only. `tax_codes`
(given: they replace the add-on's taxes) name the organization's taxes; an unknown code is
NotFound (`tax_not_found`, as customers and plans), nothing written. The add-on's taxes are
its one-off fees' (services.taxes has the whole rule).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from billing.errors import NotFound, ValidationFailed
from billing.models import AddOn, Organization
from billing.reference import currency_codes
from billing.serializers_add_ons import serialize_add_on
from billing.services import audit
from billing.services.metrics import Input, name_or_code_matches, page_of
from billing.services.organizations import lock_organization
from billing.services.pagination import Page
from billing.services.taxes import taxes_by_codes
from billing.timeutil import now_utc
from extensions import db

_FIELDS = ("name", "code", "invoice_display_name", "description", "amount_cents", "amount_currency")
_NOT_AUDITED = {"lago_id", "created_at", "taxes"}


def find_add_on(organization: Organization, code: str) -> AddOn | None:
    return db.session.scalar(
        select(AddOn).where(
            AddOn.organization_id == organization.id,
            AddOn.code == code,
            AddOn.deleted_at.is_(None),
        )
    )


def get_add_on(organization: Organization, code: str) -> AddOn:
    """The organization's live add-on with this code; NotFound (`add_on_not_found`) else."""
    add_on = find_add_on(organization, code)
    if add_on is None:
        raise NotFound("add_on")
    return add_on


def list_add_ons(
    organization: Organization, page: int = 1, per_page: int = 100, search: str | None = None
) -> Page[AddOn]:
    """The organization's live add-ons, newest first; `search` matches name or code."""
    query = (
        select(AddOn)
        .where(AddOn.organization_id == organization.id, AddOn.deleted_at.is_(None))
        .options(selectinload(AddOn.taxes))
    )
    query = name_or_code_matches(query, search, AddOn.name, AddOn.code)
    return page_of(query.order_by(AddOn.created_at.desc(), AddOn.id.asc()), page, per_page)


def parse_add_on_input(
    payload: dict[str, Any], add_on: AddOn | None = None
) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """The columns an add-on payload sets (`tax_codes` as given, checked when applied), and
    its errors; for an update (`add_on` given) absent keys keep their value."""
    errors: dict[str, list[str]] = {}
    currency = payload.get("amount_currency")
    if isinstance(currency, str):
        payload = {**payload, "amount_currency": currency.strip().upper()}
    data = Input(payload, errors)
    data.text("name")
    data.text("code", code=True)
    data.text("invoice_display_name")
    data.text("description", 10_000)
    data.integer("amount_cents")
    data.choice("amount_currency", currency_codes())
    data.string_list("tax_codes")
    current = {name: getattr(add_on, name) for name in _FIELDS} if add_on else None
    data.require("name", "code", "amount_cents", "amount_currency", current=current)
    return (data.values if not errors else {}), errors


def _audited(add_on: AddOn) -> dict[str, Any]:
    audited = {k: v for k, v in serialize_add_on(add_on).items() if k not in _NOT_AUDITED}
    return audited | {"tax_codes": add_on.tax_codes}


def _resolve_taxes(organization: Organization, columns: dict[str, Any]) -> None:
    """`tax_codes` given: the taxes they name (`taxes`); NotFound (`tax_not_found`) else."""
    if "tax_codes" in columns:
        columns["taxes"] = taxes_by_codes(organization, columns.pop("tax_codes"))


def _record(
    add_on: AddOn, actor: audit.Actor, event: str, changes: dict[str, Any] | None = None
) -> None:
    audit.record_activity(
        organization_id=add_on.organization_id,
        actor=actor,
        activity_type=event,
        resource_type="add_on",
        resource_id=str(add_on.lago_id),
        resource_label=add_on.name,
        changes=changes,
    )


def _check_code_free(organization: Organization, code: str, add_on: AddOn | None) -> None:
    taken = find_add_on(organization, code)
    if taken is not None and taken is not add_on:
        raise ValidationFailed({"code": ["value_already_exist"]})


def create_add_on(organization: Organization, data: dict[str, Any], actor: audit.Actor) -> AddOn:
    """Create an add-on from Lago's payload; ValidationFailed (nothing written) otherwise."""
    columns, errors = parse_add_on_input(data)
    if errors:
        raise ValidationFailed(errors)
    lock_organization(organization)
    _check_code_free(organization, columns["code"], None)
    _resolve_taxes(organization, columns)
    add_on = AddOn(organization_id=organization.id, **columns)
    db.session.add(add_on)
    db.session.flush()
    _record(add_on, actor, "add_on.created", audit.diff({}, _audited(add_on)))
    return add_on


def update_add_on(
    organization: Organization, add_on: AddOn, data: dict[str, Any], actor: audit.Actor
) -> AddOn:
    """Change the keys present in `data`. Invoices already issued keep their amounts."""
    columns, errors = parse_add_on_input(data, add_on)
    if errors:
        raise ValidationFailed(errors)
    lock_organization(organization)
    if "code" in columns:
        _check_code_free(organization, columns["code"], add_on)
    _resolve_taxes(organization, columns)
    before = _audited(add_on)
    for name, value in columns.items():
        setattr(add_on, name, value)
    db.session.flush()
    changes = audit.diff(before, _audited(add_on))
    if changes:
        _record(add_on, actor, "add_on.updated", changes)
    return add_on


def delete_add_on(organization: Organization, add_on: AddOn, actor: audit.Actor) -> AddOn:
    """Soft-delete the add-on: its code is free again; fees already invoiced keep it."""
    add_on.deleted_at = now_utc()
    db.session.flush()
    _record(add_on, actor, "add_on.deleted")
    return add_on
