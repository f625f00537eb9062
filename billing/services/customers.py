"""Customers: upsert by external id, soft delete, lookup and listing with filters and search."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Select, and_, exists, func, select
from sqlalchemy.orm import selectinload

from billing.errors import NotFound, ValidationFailed
from billing.ids import generate_external_id
from billing.models import Customer, CustomerMetadata, IntegrationCustomer, Organization
from billing.serializers import serialize_customer
from billing.services import audit, outbox
from billing.services.customer_input import CustomerInput, parse_customer_input
from billing.services.search import build_search_text, matching_customers
from billing.timeutil import now_utc
from extensions import db

#: keys of the serialized customer that are bookkeeping rather than data, left out of diffs
_NOT_AUDITED = {"updated_at", "created_at", "status", "applicable_timezone", "slug"}


def customer_has_attachments(customer: Customer) -> bool:
    """Whether anything (subscription, coupon, wallet, invoice) is attached to the customer.

    Nothing can be attached yet: subscriptions, coupons, wallets and invoices arrive with the
    metering and invoicing capabilities, which extend this check.
    """
    return False


def find_customer(organization: Organization, external_id: str) -> Customer | None:
    """The organization's live customer with this external id, or None."""
    return db.session.scalar(
        select(Customer)
        .where(
            Customer.organization_id == organization.id,
            Customer.external_id == external_id,
            Customer.deleted_at.is_(None),
        )
        .options(
            selectinload(Customer.metadata_items), selectinload(Customer.integration_customers)
        )
    )


def get_customer(organization: Organization, external_id: str) -> Customer:
    """The organization's live customer with this external id; NotFound otherwise."""
    customer = find_customer(organization, external_id)
    if customer is None:
        raise NotFound("customer")
    return customer


def upsert_customer(
    organization: Organization,
    payload: dict[str, Any],
    actor: audit.Actor,
    *,
    generate_missing_external_id: bool = False,
) -> tuple[Customer, bool]:
    """Create or update the customer named by `payload["external_id"]` (Lago's §3.2 semantics).

    Only keys present in the payload change; explicit nulls clear. Returns (customer, created).
    Raises ValidationFailed with every field error and writes nothing in that case.
    """
    parsed = parse_customer_input(payload, require_external_id=not generate_missing_external_id)
    if parsed.errors:
        raise ValidationFailed(parsed.errors)
    # Serialize upserts of one organization: two concurrent creations of the same external id
    # must become one creation and one update, and sequential ids must not collide.
    db.session.execute(
        select(Organization.id).where(Organization.id == organization.id).with_for_update()
    )
    external_id = parsed.external_id or generate_external_id()
    customer = find_customer(organization, external_id)
    created = customer is None
    if customer is None:
        customer = Customer(
            organization=organization,
            external_id=external_id,
            sequential_id=_next_sequential_id(organization),
            created_at=now_utc(),
        )
        before: dict[str, Any] = {}
    else:
        before = _audited(customer)
        _check_immutable(customer, parsed)
    _apply(customer, parsed)
    customer.search_text = build_search_text(customer)
    customer.updated_at = now_utc()
    db.session.add(customer)
    db.session.flush()

    after = _audited(customer)
    changes = audit.diff(before, after)
    if created or changes:
        event = "customer.created" if created else "customer.updated"
        audit.record_activity(
            organization_id=organization.id,
            actor=actor,
            activity_type=event,
            resource_type="customer",
            resource_id=str(customer.lago_id),
            changes=changes,
            customer_id=customer.id,
        )
        outbox.emit(organization.id, event, "customer", serialize_customer(customer))
    return customer, created


def delete_customer(organization: Organization, customer: Customer, actor: audit.Actor) -> Customer:
    """Soft-delete: the customer leaves lists and lookups; its external id is free again."""
    customer.deleted_at = now_utc()
    customer.updated_at = customer.deleted_at
    db.session.flush()
    audit.record_activity(
        organization_id=organization.id,
        actor=actor,
        activity_type="customer.deleted",
        resource_type="customer",
        resource_id=str(customer.lago_id),
        customer_id=customer.id,
    )
    outbox.emit(organization.id, "customer.deleted", "customer", serialize_customer(customer))
    return customer


def _next_sequential_id(organization: Organization) -> int:
    # The organization row is locked by the caller; refresh it to read the committed counter.
    db.session.refresh(organization, ["customers_sequence"])
    organization.customers_sequence += 1
    return organization.customers_sequence


def _check_immutable(customer: Customer, parsed: CustomerInput) -> None:
    new_currency = parsed.columns.get("currency", customer.currency)
    if (
        customer.currency is not None
        and new_currency != customer.currency
        and customer_has_attachments(customer)
    ):
        raise ValidationFailed({"currency": ["value_is_immutable"]})


def _apply(customer: Customer, parsed: CustomerInput) -> None:
    for column, value in parsed.columns.items():
        setattr(customer, column, value)
    if parsed.metadata is not None:
        _sync_metadata(customer, parsed)
    if parsed.integrations is not None:
        _sync_integrations(customer, parsed)


def _sync_metadata(customer: Customer, parsed: CustomerInput) -> None:
    """Items with a known id are updated, items without are created, the others deleted."""
    assert parsed.metadata is not None
    existing = {str(m.lago_id): m for m in customer.metadata_items}
    kept_ids = {item.lago_id for item in parsed.metadata if item.lago_id in existing}
    for lago_id, row in existing.items():
        if lago_id not in kept_ids:
            customer.metadata_items.remove(row)
    # Deletions first, so that a key moving from a removed item to a new one stays unique.
    if customer.id is not None:
        db.session.flush()
    for item in parsed.metadata:
        if item.lago_id in kept_ids:
            row = existing[item.lago_id]
            row.key, row.value, row.display_in_invoice = (
                item.key,
                item.value,
                item.display_in_invoice,
            )
        else:
            customer.metadata_items.append(
                CustomerMetadata(
                    key=item.key, value=item.value, display_in_invoice=item.display_in_invoice
                )
            )


def _sync_integrations(customer: Customer, parsed: CustomerInput) -> None:
    """Each listed integration is updated (matched by id, else by type) or created."""
    assert parsed.integrations is not None
    by_id = {str(i.lago_id): i for i in customer.integration_customers}
    by_type = {i.integration_type: i for i in customer.integration_customers}
    for item in parsed.integrations:
        row = by_id.get(item.lago_id or "") or by_type.get(item.integration_type)
        if row is None:
            row = IntegrationCustomer(integration_type=item.integration_type)
            customer.integration_customers.append(row)
        row.integration_type = item.integration_type
        for key, value in item.values.items():
            setattr(row, key, value)


def _audited(customer: Customer) -> dict[str, Any]:
    data = serialize_customer(customer)
    for key in _NOT_AUDITED:
        data.pop(key, None)
    data["metadata"] = [
        {"key": m["key"], "value": m["value"], "display_in_invoice": m["display_in_invoice"]}
        for m in data["metadata"]
    ]
    data["integration_customers"] = [
        {k: v for k, v in i.items() if k != "lago_id"} for i in data["integration_customers"]
    ]
    return data


# ---------------------------------------------------------------------------------------------
# Listing

SORTABLE = {
    "created_at": Customer.created_at,
    "name": Customer.name,
    "external_id": Customer.external_id,
    "email": Customer.email,
    "country": Customer.country,
    "currency": Customer.currency,
}


@dataclass
class CustomerFilters:
    """Filters of the customer list (lago-api.md §3.4), shared by the API and the console."""

    search_term: str | None = None
    external_id: str | None = None
    customer_type: str | None = None
    has_customer_type: bool | None = None
    account_types: list[str] = field(default_factory=list)
    currencies: list[str] = field(default_factory=list)
    countries: list[str] = field(default_factory=list)
    states: list[str] = field(default_factory=list)
    zipcodes: list[str] = field(default_factory=list)
    has_tax_identification_number: bool | None = None
    #: key → value; an empty value means "the key is absent"
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass
class Page:
    items: list[Customer]
    total_count: int
    page: int
    per_page: int

    @property
    def total_pages(self) -> int:
        return -(-self.total_count // self.per_page) if self.per_page else 0

    def meta(self) -> dict[str, int | None]:
        """Lago's pagination meta; an empty result has current_page 0."""
        if self.total_count == 0:
            return {
                "current_page": 0,
                "next_page": None,
                "prev_page": None,
                "total_pages": 0,
                "total_count": 0,
            }
        return {
            "current_page": self.page,
            "next_page": self.page + 1 if self.page < self.total_pages else None,
            "prev_page": self.page - 1 if self.page > 1 else None,
            "total_pages": self.total_pages,
            "total_count": self.total_count,
        }


def customer_conditions(organization: Organization, filters: CustomerFilters) -> list[Any]:
    """The WHERE conditions selecting the organization's live customers that pass `filters`."""
    conditions: list[Any] = [
        Customer.organization_id == organization.id,
        Customer.deleted_at.is_(None),
    ]
    if filters.external_id:
        conditions.append(Customer.external_id == filters.external_id)
    elif filters.search_term and filters.search_term.strip():
        match = matching_customers(db.engine.dialect.name, filters.search_term)
        if match is not None:
            conditions.append(match)
    if filters.customer_type:
        conditions.append(Customer.customer_type == filters.customer_type)
    if filters.has_customer_type is not None:
        conditions.append(
            Customer.customer_type.is_not(None)
            if filters.has_customer_type
            else Customer.customer_type.is_(None)
        )
    for column, values in (
        (Customer.account_type, filters.account_types),
        (Customer.currency, filters.currencies),
        (Customer.country, filters.countries),
        (Customer.state, filters.states),
        (Customer.zipcode, filters.zipcodes),
    ):
        if values:
            conditions.append(column.in_(values))
    if filters.has_tax_identification_number is not None:
        conditions.append(
            Customer.tax_identification_number.is_not(None)
            if filters.has_tax_identification_number
            else Customer.tax_identification_number.is_(None)
        )
    for key, value in filters.metadata.items():
        item = exists().where(
            CustomerMetadata.customer_id == Customer.id, CustomerMetadata.key == key
        )
        conditions.append(~item if value == "" else item.where(CustomerMetadata.value == value))
    return conditions


def list_customers(
    organization: Organization,
    filters: CustomerFilters,
    *,
    page: int = 1,
    per_page: int = 100,
    sort: str = "-created_at",
) -> Page:
    """One page of customers, newest first by default, with the total count of matches."""
    conditions = customer_conditions(organization, filters)
    # Matching ids first, then order and page them: with ORDER BY ... LIMIT on the full table
    # PostgreSQL may walk the created_at index and filter row by row instead of using search.
    matching = (
        select(Customer.id)
        .where(and_(*conditions))
        .cte("matching")
        .prefix_with("MATERIALIZED", dialect="postgresql")
    )
    total = db.session.scalar(select(func.count()).select_from(matching)) or 0
    if total == 0:
        return Page([], 0, page, per_page)
    descending = sort.startswith("-")
    column = SORTABLE.get(sort.lstrip("-"), Customer.created_at)
    order = [column.desc() if descending else column.asc(), Customer.id.asc()]
    query: Select[tuple[Customer]] = (
        select(Customer)
        .where(Customer.id.in_(select(matching.c.id)))
        .order_by(*order)
        .limit(per_page)
        .offset((page - 1) * per_page)
        .options(
            selectinload(Customer.metadata_items), selectinload(Customer.integration_customers)
        )
    )
    return Page(list(db.session.scalars(query)), total, page, per_page)
