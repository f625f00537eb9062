"""Customers: upsert by external id, soft delete, lookup and listing with filters and search."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any, NamedTuple

from sqlalchemy import (
    Integer,
    Row,
    Select,
    any_,
    bindparam,
    exists,
    func,
    inspect,
    literal_column,
    select,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import selectinload

from billing.errors import InvariantBroken, NotFound, ValidationFailed
from billing.ids import generate_external_id
from billing.models import (
    AppliedCoupon,
    Customer,
    CustomerMetadata,
    IntegrationCustomer,
    Invoice,
    Organization,
    Subscription,
    Tax,
    Wallet,
)
from billing.models.customers import CustomerStatus
from billing.models.taxes import customer_taxes
from billing.serializers import serialize_customer
from billing.services import audit, outbox
from billing.services.analytics import overdue_customer_ids
from billing.services.customer_input import CustomerInput, parse_customer_input
from billing.services.organizations import lock_organization
from billing.services.pagination import Page
from billing.services.search import (
    build_search_text,
    count_matches_sqlite,
    matching_customers,
)
from billing.services.taxes import taxes_by_codes
from billing.services.usage import rebuild_usage
from billing.timeutil import now_utc
from extensions import db

#: keys of the serialized customer that are bookkeeping rather than data, left out of diffs
_NOT_AUDITED = {
    "lago_id", "sequential_id", "slug", "created_at", "updated_at", "deleted_at", "status",
    "applicable_timezone", "billing_entity_code", "applicable_invoice_custom_sections",
    "error_details",
}  # fmt: skip
#: values a new customer has unless told otherwise
_CREATION_DEFAULTS = {
    "account_type": "customer",
    "finalize_zero_amount_invoice": "inherit",
    "skip_invoice_custom_sections": False,
}


def customer_has_attachments(customer: Customer) -> bool:
    """Whether anything (subscription, coupon, wallet, invoice) is attached to the customer.

    Subscriptions, invoices, applied coupons and wallets of any status count.
    """
    if customer.id is None:
        return False
    return bool(
        db.session.scalar(
            select(
                exists().where(Subscription.customer_id == customer.id)
                | exists().where(Invoice.customer_id == customer.id)
                | exists().where(AppliedCoupon.customer_id == customer.id)
                | exists().where(Wallet.customer_id == customer.id)
            )
        )
    )


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
            selectinload(Customer.metadata_items),
            selectinload(Customer.integration_customers),
            selectinload(Customer.taxes),
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
    lock_organization(organization)
    external_id = parsed.external_id or generate_external_id()
    customer = find_customer(organization, external_id)
    if customer is None:
        customer = Customer(
            organization=organization,
            external_id=external_id,
            sequential_id=_next_sequential_id(organization),
            created_at=now_utc(),
        )
        _save(organization, customer, parsed, actor, before=None)
        return customer, True
    _check_immutable(customer, parsed)
    _save(organization, customer, parsed, actor, before=_audited(customer))
    return customer, False


def update_customer(
    organization: Organization, customer: Customer, payload: dict[str, Any], actor: audit.Actor
) -> Customer:
    """Update a known customer (the console's edit form); its external id may change too,
    while nothing is attached and no other live customer uses the new one."""
    parsed = parse_customer_input(payload)
    if parsed.errors:
        raise ValidationFailed(parsed.errors)
    lock_organization(organization)
    _check_immutable(customer, parsed)
    if parsed.external_id != customer.external_id:
        if customer_has_attachments(customer):
            raise ValidationFailed({"external_id": ["value_is_immutable"]})
        if find_customer(organization, parsed.external_id or "") is not None:
            raise ValidationFailed({"external_id": ["value_already_exist"]})
        parsed.columns["external_id"] = parsed.external_id
    _save(organization, customer, parsed, actor, before=_audited(customer))
    return customer


def _save(
    organization: Organization,
    customer: Customer,
    parsed: CustomerInput,
    actor: audit.Actor,
    *,
    before: dict[str, Any] | None,
) -> None:
    """Apply the parsed changes, reindex, and record the change (audit + outbox) if any."""
    _apply(customer, parsed)
    customer.search_text = build_search_text(customer)
    db.session.add(customer)
    db.session.flush()
    after = _audited(customer)
    if before is None:
        # A new customer's entry lists what was given, not every default.
        after = {k: v for k, v in after.items() if _CREATION_DEFAULTS.get(k) != v}
    changes = audit.diff(before or {}, after)
    if before is not None and not changes:
        return
    customer.updated_at = now_utc()
    if before is not None and "timezone" in changes:
        apply_timezone_change(organization, customer)
    if before is not None and "billing_configuration.invoice_grace_period" in changes:
        from billing.services.invoicing import reschedule_drafts  # noqa: PLC0415  (see above)

        reschedule_drafts(organization, customer)
    event = "customer.created" if before is None else "customer.updated"
    audit.record_activity(
        organization_id=organization.id,
        actor=actor,
        activity_type=event,
        resource_type="customer",
        resource_id=str(customer.lago_id),
        resource_label=customer.display_name,
        changes=changes,
        customer_id=customer.id,
    )
    outbox.emit(organization.id, event, "customer", serialize_customer(customer))


def delete_customer(organization: Organization, customer: Customer, actor: audit.Actor) -> Customer:
    """Soft-delete: the customer's subscriptions end (active ones terminated and billed, those
    not started canceled), its draft invoices are finalized (consuming its prepaid credits),
    then its applied coupons terminated, its wallet's remaining credits voided and the wallet
    terminated; then it leaves lists and lookups (its invoices stay readable) and its external
    id is free again."""
    # Imported here: the subscriptions service builds on this module (it creates customers).
    from billing.services.coupons import terminate_customer_coupons  # noqa: PLC0415
    from billing.services.invoicing import finalize_customer_drafts  # noqa: PLC0415
    from billing.services.subscriptions import end_customer_subscriptions  # noqa: PLC0415
    from billing.services.wallets import terminate_customer_wallets  # noqa: PLC0415

    end_customer_subscriptions(organization, customer, actor)
    # drafts first: they are finalized with the coupons they show
    finalize_customer_drafts(customer, actor)
    terminate_customer_coupons(customer, actor)
    terminate_customer_wallets(customer, actor)
    customer.deleted_at = now_utc()
    customer.updated_at = customer.deleted_at
    db.session.flush()
    audit.record_activity(
        organization_id=organization.id,
        actor=actor,
        activity_type="customer.deleted",
        resource_type="customer",
        resource_id=str(customer.lago_id),
        resource_label=customer.display_name,
        customer_id=customer.id,
    )
    outbox.emit(organization.id, "customer.deleted", "customer", serialize_customer(customer))
    return customer


def apply_timezone_change(organization: Organization, customer: Customer | None = None) -> None:
    """Usage buckets are days and periods end at midnights of the customer's zone: after a zone
    change, recompute the buckets and the next period close of this customer's subscriptions,
    or (no customer: the organization's zone changed) of every customer following it."""
    # Imported here: invoicing builds on the subscriptions service, which builds on this one.
    from billing.services.invoicing import reschedule_after_timezone_change  # noqa: PLC0415

    query = select(Subscription.id).where(Subscription.organization_id == organization.id)
    if customer is not None:
        query = query.where(Subscription.customer_id == customer.id)
    else:
        query = query.join(Customer, Customer.id == Subscription.customer_id).where(
            Customer.timezone.is_(None)
        )
    subscription_ids = list(db.session.scalars(query))
    if subscription_ids:
        rebuild_usage(subscription_ids)
        reschedule_after_timezone_change(subscription_ids)


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
    if parsed.tax_codes is not None:
        customer.taxes = taxes_by_codes(customer.organization, parsed.tax_codes)


def _sync_metadata(customer: Customer, parsed: CustomerInput) -> None:
    """Items with a known id are updated, items without are created, the others deleted."""
    if parsed.metadata is None:
        raise InvariantBroken("expected parsed.metadata is not None")
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
    if parsed.integrations is None:
        raise InvariantBroken("expected parsed.integrations is not None")
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
    """The customer as flat `field: value` pairs, for readable audit diffs
    (`billing_configuration.document_locale`, `metadata.tier`, `integration.hubspot`)."""
    flat: dict[str, Any] = {}
    for key, value in serialize_customer(customer).items():
        if key in _NOT_AUDITED:
            continue
        if key in ("billing_configuration", "shipping_address"):
            flat.update({f"{key}.{sub}": v for sub, v in value.items()})
        elif key == "metadata":
            for item in value:
                shown = " (on invoice)" if item["display_in_invoice"] else ""
                flat[f"metadata.{item['key']}"] = f"{item['value']}{shown}"
        elif key == "integration_customers":
            for link in value:
                flat[f"integration.{link['type']}"] = link["external_customer_id"]
        elif key == "taxes":
            flat["tax_codes"] = [tax["code"] for tax in value] or None
        else:
            flat[key] = value
    return flat


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
    #: None: live customers; "active", "inactive" or "deleted" (deleted ones only then)
    status: str | None = None
    #: created at or after / strictly before (UTC-aware)
    created_from: datetime | None = None
    created_before: datetime | None = None
    #: True: customers with overdue invoices only; False: without
    overdue: bool | None = None


def customer_conditions(
    organization: Organization, filters: CustomerFilters, *, search_at_most: int | None = None
) -> list[Any]:
    """The WHERE conditions selecting the organization's live customers that pass `filters`.

    `search_at_most`: see `matching_customers(at_most=…)` (SQLite, a search alone).
    """
    organization_id: Any = Customer.organization_id
    if _searching_index(filters) and db.engine.dialect.name == "sqlite":
        # A search finds the organization's matches in its own index, and SQLite then looks
        # them up by id. As `organization_id + 0` this condition cannot make SQLite scan
        # ix_customers_live_created instead (every customer of the organization), which it
        # prefers when it has no statistics.
        organization_id = Customer.organization_id + 0
    conditions: list[Any] = [
        organization_id == organization.id,
        *_status_conditions(filters.status),
    ]
    if filters.overdue:
        # The customers come from ix_invoices_overdue_customer (the overdue invoices only),
        # not from a probe per customer of the organization.
        conditions.append(Customer.id.in_(overdue_customer_ids(db.engine.dialect.name)))
    elif filters.overdue is False:
        conditions.append(~Customer.has_overdue_invoices)
    if filters.created_from is not None:
        conditions.append(Customer.created_at >= filters.created_from)
    if filters.created_before is not None:
        conditions.append(Customer.created_at < filters.created_before)
    if filters.external_id:
        conditions.append(Customer.external_id == filters.external_id)
    elif _searching(filters):
        if filters.search_term is None:
            raise InvariantBroken("expected filters.search_term is not None")
        conditions.append(
            matching_customers(
                db.engine.dialect.name,
                organization.id,
                filters.search_term,
                deleted=filters.status == "deleted",
                at_most=search_at_most,
            )
        )
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
        if value == "":
            absent = exists().where(
                CustomerMetadata.customer_id == Customer.id, CustomerMetadata.key == key
            )
            conditions.append(~absent)
        else:
            # The matching customers come from the (key, value) index, not a probe per customer.
            holders = select(CustomerMetadata.customer_id).where(
                CustomerMetadata.key == key, CustomerMetadata.value == value
            )
            conditions.append(Customer.id.in_(holders))
    return conditions


def list_customers(
    organization: Organization,
    filters: CustomerFilters,
    *,
    page: int = 1,
    per_page: int = 100,
    sort: str = "-created_at",
) -> Page[ListedCustomer]:
    """One page of customers, newest first by default, with the total count of matches. The
    customers are ListedCustomer: read-only, their metadata items and CRM links included.

    The best plan depends on how many customers match, which the databases cannot estimate
    for a search (and a wrong guess costs a hundredfold: PostgreSQL, seeing ORDER BY … LIMIT,
    may walk every customer for a search that matches three). So the listing finds out:
    * few matches (the usual search): one query fetches the matching ids first, counts them,
      orders and pages them and returns the page's customers; it gives up after
      WALK_FACTOR × (the page's end) matches and then returns nothing.
    * many: they are counted apart (a plain search on SQLite in its index alone), and the
      page is found by walking the organization's customers in list order, keeping the
      matches, until the page is full.
    """
    descending = sort.startswith("-")
    key = SORTABLE.get(sort.lstrip("-"), Customer.created_at)
    offset = (page - 1) * per_page
    few = min(WALK_FACTOR * (offset + per_page), MANY)
    plain_search = _plain_search_on_sqlite(filters)
    conditions = customer_conditions(
        organization, filters, search_at_most=few if plain_search else None
    )
    rows, counted = _page_of_matches(conditions, key, descending, offset, per_page, few)
    if rows:
        return Page(_listed(organization, rows), counted, page, per_page)
    # No match, a page past the last match, or many matches.
    if plain_search:
        if filters.search_term is None:
            raise InvariantBroken("expected filters.search_term is not None")
        total = db.session.scalar(count_matches_sqlite(organization.id, filters.search_term))
        conditions = customer_conditions(organization, filters)
    else:
        total = db.session.scalar(select(func.count()).select_from(Customer).where(*conditions))
    if offset >= (total or 0):
        return Page([], total or 0, page, per_page)
    if total is None:
        raise InvariantBroken("expected total is not None")
    # Every sortable column has an index led by the organization (ix_customers_live_*), so the
    # walk below reads the organization's customers in list order and stops once the page is
    # full, instead of sorting every match.
    if db.engine.dialect.name == "sqlite" and _searching_index(filters):
        # As a plain condition SQLite would look every match up by id and sort them all; as a
        # filter it walks ix_customers_live_created, newest first, and stops early.
        if filters.search_term is None:
            raise InvariantBroken("expected filters.search_term is not None")
        conditions = [
            *customer_conditions(organization, replace(filters, search_term=None)),
            matching_customers("sqlite", organization.id, filters.search_term, filter_only=True),
        ]
    walk = (
        select(*_LISTED_COLUMNS)
        .where(*conditions)
        .order_by(key.desc() if descending else key.asc(), Customer.id.asc())
        .limit(per_page)
        .offset(offset)
    )
    return Page(_listed(organization, _read(walk)), total, page, per_page)


#: More matches than WALK_FACTOR × the rows up to the end of the page are "many": their page
#: is found by a walk that reads at most 1/WALK_FACTOR of the organization's customers.
WALK_FACTOR = 20
#: ... and never more than this: on deep pages, collecting every match first costs more than
#: walking to the page.
MANY = 5000

#: What a listed customer carries: what the ORM loads of a customer (its columns and any column
#: property, each under its attribute's name), but the search text, which is for the index and
#: never shown.
_LISTED_ATTRIBUTES = [a for a in inspect(Customer).column_attrs if a.key != "search_text"]
_LISTED_COLUMNS = tuple(a.columns[0].label(a.key) for a in _LISTED_ATTRIBUTES)
_LISTED_KEYS = tuple(a.key for a in _LISTED_ATTRIBUTES)
#: a Core result row of any columns
_Row = Row[*tuple[Any, ...]]


class ListedOrganization(NamedTuple):
    """What listed customers' derived fields (slug, applicable time zone) read of their
    organization, read once a page: the slug prefix is computed from the organization's name
    and id, a few microseconds that a hundred customers would repeat."""

    slug_prefix: str
    timezone: str


class ListedCustomer:
    """A customer of a list, read-only: its columns as attributes, its metadata items and CRM
    links as rows (with the columns of theirs that the serializers read), its organization as
    a ListedOrganization, and the model's own derived fields (slug, status, display name …).

    Lists build it from Core rows rather than loading ORM objects: for a full page of 100
    customers with their ~200 metadata items, the ORM's per-row bookkeeping (identity map,
    instrumented attributes, relationship loaders) cost more than the search itself.
    """

    if TYPE_CHECKING:
        slug: str
        applicable_timezone: str
        status: CustomerStatus
        display_name: str

        # The columns of `customers`, set from the row (see _LISTED_COLUMNS).
        def __getattr__(self, name: str) -> Any: ...
    else:
        # The model's own properties, so that both agree by construction.
        slug = Customer.slug
        applicable_timezone = Customer.applicable_timezone
        status = Customer.status
        display_name = Customer.display_name

    def __init__(
        self,
        values: dict[str, Any],
        organization: ListedOrganization,
        metadata_items: list[_Row],
        integration_customers: list[_Row],
        taxes: list[_Row],
    ) -> None:
        self.__dict__.update(values)
        self.organization = organization
        self.metadata_items = metadata_items
        self.integration_customers = integration_customers
        self.taxes = taxes


def _read(query: Select[Any], **params: Any) -> list[_Row]:
    """The rows of a Core query, read through the session's connection: a list needs no ORM
    result processing."""
    return list(db.session.connection().execute(query, params).all())


def _of_customers(column: Any, dialect: str) -> Any:
    """`column` is one of the customer ids of the parameter `ids`: a JSON array on SQLite
    (json_each), an array on PostgreSQL. One parameter, so the statement's SQL is the same
    whatever the page: an IN list of a hundred ids was rendered anew for every page."""
    if dialect == "postgresql":
        return column == any_(bindparam("ids", type_=postgresql.ARRAY(Integer)))
    return column.in_(select(literal_column("value")).select_from(func.json_each(bindparam("ids"))))


def _child_rows(dialect: str) -> tuple[Select[Any], Select[Any], Select[Any]]:
    """The statements of the metadata items, CRM links and taxes of the customers `ids`, in
    the order the ORM relationships use, for a dialect."""

    def of(model: type[CustomerMetadata | IntegrationCustomer]) -> Select[Any]:
        return (
            select(*model.__table__.c)
            .where(_of_customers(model.customer_id, dialect))
            .order_by(model.customer_id, model.id)
        )

    taxes = (
        select(customer_taxes.c.customer_id, *Tax.__table__.c)
        .join(Tax, Tax.id == customer_taxes.c.tax_id)
        .where(_of_customers(customer_taxes.c.customer_id, dialect))
        .order_by(customer_taxes.c.customer_id, Tax.code)
    )
    return of(CustomerMetadata), of(IntegrationCustomer), taxes


_CHILD_ROWS = {dialect: _child_rows(dialect) for dialect in ("sqlite", "postgresql")}


def _listed(organization: Organization, rows: Sequence[_Row]) -> list[ListedCustomer]:
    """The page's customers from their rows (led by _LISTED_COLUMNS), with their metadata
    items, CRM links and taxes read in one query each, in the order the ORM relationships use."""
    ids = [row.id for row in rows]
    listed_organization = ListedOrganization(organization.slug_prefix, organization.timezone)
    metadata: dict[int, list[_Row]] = {id_: [] for id_ in ids}
    links: dict[int, list[_Row]] = {id_: [] for id_ in ids}
    taxes: dict[int, list[_Row]] = {id_: [] for id_ in ids}
    if ids:
        dialect = db.session.get_bind().dialect.name
        parameter = ids if dialect == "postgresql" else json.dumps(ids)
        for query, by_customer in zip(_CHILD_ROWS[dialect], (metadata, links, taxes), strict=True):
            for child in _read(query, ids=parameter):
                by_customer[child.customer_id].append(child)
    return [
        ListedCustomer(
            # zip stops at the last listed column: a page's rows also carry the total count.
            dict(zip(_LISTED_KEYS, row, strict=False)),
            listed_organization,
            metadata[row.id],
            links[row.id],
            taxes[row.id],
        )
        for row in rows
    ]


def _searching(filters: CustomerFilters) -> bool:
    return not filters.external_id and bool(filters.search_term and filters.search_term.strip())


def _searching_index(filters: CustomerFilters) -> bool:
    """A search that the search index answers (it holds live customers only)."""
    return _searching(filters) and filters.status != "deleted"


def _page_of_matches(
    conditions: list[Any],
    key: Any,
    descending: bool,
    offset: int,
    limit: int,
    fewer_than: int | None,
) -> tuple[list[_Row], int]:
    """One page of the matching customers (rows led by _LISTED_COLUMNS) and how many match, in
    one query; nothing when the page is empty or when `fewer_than` or more match (counting
    stops there).

    The matching ids are fetched first: the CTE is MATERIALIZED so that neither database folds
    it into a walk of every customer of the organization. They are counted, ordered and paged,
    and only then are the page's customers read."""
    matching = select(Customer.id, key.label("sort_key")).where(*conditions)
    if fewer_than is not None:
        matching = matching.limit(fewer_than)
    found = matching.cte("matching").prefix_with("MATERIALIZED")

    def order(table: Any) -> list[Any]:
        sort_key = table.c.sort_key.desc() if descending else table.c.sort_key.asc()
        return [sort_key, table.c.id.asc()]

    page = (
        select(found.c.id, found.c.sort_key, func.count().over().label("total"))
        .order_by(*order(found))
        .limit(limit)
        .offset(offset)
        .subquery("page")
    )
    query = (
        select(*_LISTED_COLUMNS, page.c.total)
        .select_from(page)
        .join(Customer, Customer.id == page.c.id)
        .order_by(*order(page))
    )
    if fewer_than is not None:
        query = query.where(page.c.total < fewer_than)
    rows = _read(query)
    return rows, rows[0].total if rows else 0


def _plain_search_on_sqlite(filters: CustomerFilters) -> bool:
    """A search and no other filter (the search box), on SQLite: the search index then holds
    exactly the matching customers (the organization's live ones, under their rowid range)."""
    return (
        db.engine.dialect.name == "sqlite"
        and _searching(filters)
        and filters == CustomerFilters(search_term=filters.search_term)
    )


def _status_conditions(status: str | None) -> list[Any]:
    if status == "deleted":
        return [Customer.deleted_at.is_not(None)]
    conditions: list[Any] = [Customer.deleted_at.is_(None)]
    # Active means "has an active subscription": the correlated EXISTS of the model's
    # `has_active_subscription`, answered by ix_subscriptions_customer.
    if status == "active":
        conditions.append(Customer.has_active_subscription)
    elif status == "inactive":
        conditions.append(~Customer.has_active_subscription)
    return conditions


def count_customers(organization: Organization, filters: CustomerFilters) -> int:
    """How many customers pass `filters` (saved views show it next to their name)."""
    if _plain_search_on_sqlite(filters):
        if filters.search_term is None:
            raise InvariantBroken("expected filters.search_term is not None")
        return db.session.scalar(count_matches_sqlite(organization.id, filters.search_term)) or 0
    return (
        db.session.scalar(
            select(func.count())
            .select_from(Customer)
            .where(*customer_conditions(organization, filters))
        )
        or 0
    )


def iter_customers(
    organization: Organization, filters: CustomerFilters, *, sort: str = "-created_at"
) -> Iterator[Customer]:
    """Every customer passing `filters`, in list order, streamed in batches (CSV export)."""
    descending = sort.startswith("-")
    column = SORTABLE.get(sort.lstrip("-"), Customer.created_at)
    query = (
        select(Customer)
        .where(*customer_conditions(organization, filters))
        .order_by(column.desc() if descending else column.asc(), Customer.id.asc())
        .options(selectinload(Customer.metadata_items))
        .execution_options(yield_per=500)
    )
    yield from db.session.scalars(query)
