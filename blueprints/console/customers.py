"""Customers in the console: list, search, filters, saved views; create, view, edit, delete."""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlencode
from zoneinfo import ZoneInfo

from flask import (
    Response,
    abort,
    flash,
    redirect,
    render_template,
    request,
    stream_with_context,
    url_for,
)
from flask.typing import ResponseReturnValue
from sqlalchemy import select
from werkzeug.datastructures import MultiDict

from billing.errors import NotFound, ValidationFailed
from billing.models import ActivityLog, Customer, SavedView
from billing.reference import currency_codes
from billing.services import analytics, webhooks
from billing.services import customers as customer_service
from billing.services import invoicing as invoicing_service
from billing.services import mail as mail_service
from billing.services import subscriptions as subscription_service
from billing.services import wallets as wallet_service
from billing.services.customers import CustomerFilters, customer_has_attachments
from blueprints.console import bp, coupons, finance, invoices, subscriptions, wallets
from blueprints.console import mail as mail_views
from blueprints.console.forms import (
    ConfirmDeleteForm,
    CustomerForm,
    SavedViewForm,
    country_choices,
    tax_choices,
)
from blueprints.console.helpers import (
    agent_actor,
    apply_errors,
    current_agent,
    current_organization,
    customer_or_404,
    date_arg,
    int_arg,
    redirect_htmx,
    render_htmx,
    requires,
)
from blueprints.console.messages import field_message
from extensions import db

PER_PAGE = 50
SORT_COLUMNS = {
    "name": "Name",
    "external_id": "External id",
    "email": "E-mail",
    "country": "Country",
    "currency": "Currency",
    "created_at": "Created",
}
#: the status filter's choices; "active" means "has an active subscription"
STATUSES = {
    "active": "Active (subscribed)",
    "inactive": "Inactive (no active subscription)",
    "deleted": "Deleted",
}
TABS = {
    "overview": "Overview",
    "invoices": "Invoices",
    "subscriptions": "Subscriptions & usage",
    "wallet": "Wallet & coupons",
    "analytics": "Analytics",
    "activity": "Activity",
    "settings": "Settings",
}
ACTOR_TYPES = {"agent": "Agents", "api_key": "API keys", "portal": "Portal", "webhook": "Webhooks",
               "system": "System"}  # fmt: skip


@dataclass
class ListQuery:
    """The customer list's state, read from and written back to the URL (shareable views)."""

    q: str = ""
    countries: list[str] = field(default_factory=list)
    currencies: list[str] = field(default_factory=list)
    customer_type: str = ""
    status: str = ""
    #: customers with overdue invoices only
    overdue: bool = False
    created_from: date | None = None
    created_to: date | None = None
    meta_key: str = ""
    meta_value: str = ""
    sort: str = "-created_at"
    page: int = 1

    @classmethod
    def from_args(cls, args: MultiDict[str, str]) -> ListQuery:
        sort = args.get("sort", "-created_at")
        if sort.lstrip("-") not in SORT_COLUMNS:
            sort = "-created_at"
        return cls(
            q=args.get("q", "").strip()[:200],
            countries=[c.upper() for c in args.getlist("country") if c],
            currencies=[c.upper() for c in args.getlist("currency") if c],
            customer_type=v
            if (v := args.get("customer_type", "")) in ("company", "individual")
            else "",
            status=v if (v := args.get("status", "")) in STATUSES else "",
            overdue=args.get("overdue") == "1",
            created_from=date_arg(args.get("created_from")),
            created_to=date_arg(args.get("created_to")),
            meta_key=args.get("meta_key", "").strip()[:255],
            meta_value=args.get("meta_value", "").strip()[:255],
            sort=sort,
            page=max(1, int_arg(args.get("page"), 1)),
        )

    def filters(self, timezone: str) -> CustomerFilters:
        zone = ZoneInfo(timezone)
        return CustomerFilters(
            search_term=self.q or None,
            customer_type=self.customer_type or None,
            countries=self.countries,
            currencies=self.currencies,
            metadata={self.meta_key: self.meta_value} if self.meta_key else {},
            status=self.status or None,
            overdue=True if self.overdue else None,
            created_from=(
                datetime.combine(self.created_from, time(), zone) if self.created_from else None
            ),
            created_before=(
                datetime.combine(self.created_to + timedelta(days=1), time(), zone)
                if self.created_to
                else None
            ),
        )

    def args(self, **changes: Any) -> list[tuple[str, str]]:
        """Query-string pairs for this state with `changes`; defaults are left out."""
        state = replace(self, **changes)
        pairs: list[tuple[str, str]] = []
        for name, value in (("q", state.q), ("customer_type", state.customer_type),
                            ("status", state.status), ("meta_key", state.meta_key),
                            ("meta_value", state.meta_value)):  # fmt: skip
            if value:
                pairs.append((name, value))
        if state.overdue:
            pairs.append(("overdue", "1"))
        pairs += [("country", c) for c in state.countries]
        pairs += [("currency", c) for c in state.currencies]
        if state.created_from:
            pairs.append(("created_from", state.created_from.isoformat()))
        if state.created_to:
            pairs.append(("created_to", state.created_to.isoformat()))
        if state.sort != "-created_at":
            pairs.append(("sort", state.sort))
        if state.page != 1:
            pairs.append(("page", str(state.page)))
        return pairs

    def url(self, **changes: Any) -> str:
        pairs = self.args(**changes)
        return url_for("console.customers") + ("?" + urlencode(pairs) if pairs else "")

    def sort_url(self, column: str) -> str:
        """Clicking a column sorts by it; clicking it again reverses the order."""
        descending = self.sort == column
        return self.url(sort=f"-{column}" if descending else column, page=1)

    @property
    def is_filtered(self) -> bool:
        return bool(self.args(sort="-created_at", page=1))


# --- list ------------------------------------------------------------------------------------


@bp.get("/customers")
def customers() -> ResponseReturnValue:
    """The customer list; htmx requests (live search, filters, paging) get the table only."""
    organization = current_organization()
    query = ListQuery.from_args(request.args)
    page = customer_service.list_customers(
        organization,
        query.filters(organization.timezone),
        page=query.page,
        per_page=PER_PAGE,
        sort=query.sort,
    )
    return render_htmx(
        "console/customers.html",
        "console/_customer_table.html",
        query=query,
        page=page,
        sort_columns=SORT_COLUMNS,
        active_plans=subscription_service.active_plan_names(c.id for c in page.items),
        currencies=sorted(currency_codes()),
        country_options=country_choices()[1:],
        statuses=STATUSES,
    )


@bp.get("/customers/export.csv")
def export_customers() -> ResponseReturnValue:
    """Every customer of the current filtered list, as CSV (streamed, not paged)."""
    organization = current_organization()
    query = ListQuery.from_args(request.args)
    rows = customer_service.iter_customers(
        organization, query.filters(organization.timezone), sort=query.sort
    )
    filename = f"customers-{date.today().isoformat()}.csv"
    return Response(
        stream_with_context(_csv_lines(rows)),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


EXPORT_COLUMNS = (
    "external_id", "name", "firstname", "lastname", "customer_type", "email", "phone",
    "legal_name", "legal_number", "tax_identification_number", "address_line1", "address_line2",
    "city", "zipcode", "state", "country", "currency", "timezone", "external_salesforce_id",
)  # fmt: skip


def _csv_lines(customers: Iterator[Customer]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)

    def flush() -> str:
        value = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return value

    writer.writerow([*EXPORT_COLUMNS, "status", "created_at", "metadata"])
    yield flush()
    for customer in customers:
        writer.writerow(
            [getattr(customer, column) or "" for column in EXPORT_COLUMNS]
            + [
                customer.status.value,
                customer.created_at.isoformat(),
                "; ".join(f"{m.key}={m.value}" for m in customer.metadata_items),
            ]
        )
        yield flush()


# --- saved views -----------------------------------------------------------------------------


def saved_views() -> list[SavedView]:
    """The agent's saved views, by name (the sidebar lists them on every page)."""
    return list(
        db.session.scalars(
            select(SavedView)
            .where(SavedView.agent_id == current_agent().id)
            .order_by(SavedView.name)
        )
    )


def view_count(view: SavedView) -> int:
    """How many customers a saved view finds now."""
    organization = current_organization()
    query = ListQuery.from_args(MultiDict(_parse_query(view.query)))
    return customer_service.count_customers(organization, query.filters(organization.timezone))


@bp.get("/views")
def saved_views_panel() -> ResponseReturnValue:
    """The sidebar's saved views with their live counts; pages load it after they render, so
    that counting never delays the page itself."""
    return render_template("console/_saved_views.html", with_counts=True)


def _parse_query(query: str) -> list[tuple[str, str]]:
    return parse_qsl(query, keep_blank_values=False)


@bp.context_processor
def sidebar() -> dict[str, Any]:
    return {"saved_views": saved_views, "view_count": view_count}


@bp.post("/views")
def save_view() -> ResponseReturnValue:
    """Name the current search and filters; the view appears in the sidebar with its count."""
    form = SavedViewForm()
    query = ListQuery.from_args(MultiDict(_parse_query(form.query.data or "")))
    if not form.validate():
        flash("A saved view needs a name of at most 80 characters.", "error")
        return redirect(query.url())
    name = (form.name.data or "").strip()
    agent = current_agent()
    view = db.session.scalar(
        select(SavedView).where(SavedView.agent_id == agent.id, SavedView.name == name)
    )
    if view is None:
        view = SavedView(organization_id=agent.organization_id, agent_id=agent.id, name=name)
        db.session.add(view)
    view.query = urlencode(query.args(page=1))
    db.session.commit()
    flash(f"Saved view “{name}”.", "success")
    return redirect(query.url(page=1))


@bp.post("/views/<int:view_id>/delete")
def delete_view(view_id: int) -> ResponseReturnValue:
    """Remove one of the agent's saved views."""
    view = db.session.get(SavedView, view_id)
    if view is None or view.agent_id != current_agent().id:
        abort(404)
    db.session.delete(view)
    db.session.commit()
    flash(f"Removed view “{view.name}”.", "success")
    return redirect(url_for("console.customers"))


# --- create and edit -------------------------------------------------------------------------


def _payload_from_form(form: CustomerForm) -> dict[str, Any]:
    """The service payload of a submitted form: every field, blanks meaning "none"."""
    data = form.data
    payload: dict[str, Any] = {
        name: data[name]
        for name in CustomerForm.IDENTITY
        + CustomerForm.CONTACT
        + CustomerForm.ADDRESS
        + ("currency", "timezone", "net_payment_term")
    }
    payload["shipping_address"] = {
        name.removeprefix("shipping_"): data[name] for name in CustomerForm.SHIPPING
    }
    payload["billing_configuration"] = {
        "document_locale": data["document_locale"],
        "invoice_grace_period": data["invoice_grace_period"],
    }
    payload["metadata"] = _metadata_rows(request.form)
    payload["tax_codes"] = data["tax_codes"] or []
    return payload


def _metadata_rows(form: MultiDict[str, str]) -> list[dict[str, Any]]:
    """Rows `metadata-N-key/value/display_in_invoice/id`, in order; empty rows are skipped."""
    indexes = sorted(
        {
            int(parts[1])
            for parts in (name.split("-") for name in form)
            if len(parts) == 3 and parts[0] == "metadata" and parts[1].isdigit()
        }
    )
    rows = []
    for i in indexes:
        key, value = form.get(f"metadata-{i}-key", ""), form.get(f"metadata-{i}-value", "")
        if not key.strip() and not value.strip():
            continue
        row: dict[str, Any] = {
            "key": key.strip(),
            "value": value.strip(),
            "display_in_invoice": form.get(f"metadata-{i}-display_in_invoice") == "y",
        }
        if form.get(f"metadata-{i}-id"):
            row["id"] = form[f"metadata-{i}-id"]
        rows.append(row)
    return rows


def _render_form(
    form: CustomerForm,
    customer: Customer | None,
    status: int,
    metadata: list[dict[str, Any]],
    metadata_errors: list[str] | None = None,
) -> ResponseReturnValue:
    form.tax_codes.choices = tax_choices(current_organization())
    return render_htmx(
        "console/customer_form.html",
        "console/_customer_form.html",
        status=status,
        form=form,
        customer=customer,
        metadata=metadata,
        metadata_errors=metadata_errors or [],
        locked=customer is not None and customer_has_attachments(customer),
    )


@bp.route("/customers/new", methods=["GET", "POST"])
@requires("write")
def new_customer() -> ResponseReturnValue:
    """Create a customer; a blank external id is generated (`cus_…`)."""
    organization = current_organization()
    form = CustomerForm()
    if request.method == "GET":
        form.currency.data = organization.default_currency or ""
        return _render_form(form, None, 200, [])
    metadata = _metadata_rows(request.form)
    if not form.validate():
        return _render_form(form, None, 422, metadata)
    try:
        customer, _created = customer_service.upsert_customer(
            organization, _payload_from_form(form), agent_actor(), generate_missing_external_id=True
        )
    except (ValidationFailed, NotFound) as exc:
        db.session.rollback()
        unplaced = apply_errors(form, _error_details(exc), field_message)
        return _render_form(form, None, 422, metadata, unplaced)
    db.session.commit()
    flash(f"Customer created with external id {customer.external_id}.", "success")
    return redirect_htmx(url_for("console.customer", lago_id=customer.lago_id))


@bp.route("/customers/<uuid:lago_id>/edit", methods=["GET", "POST"])
@requires("write")
def edit_customer(lago_id: uuid.UUID) -> ResponseReturnValue:
    """Edit every field of a customer; the external id and currency lock once billing starts."""
    organization = current_organization()
    customer = customer_or_404(lago_id, include_deleted=False)
    if request.method == "GET":
        form = CustomerForm(data=_form_data(customer))
        return _render_form(form, customer, 200, _metadata_of(customer))
    form = CustomerForm()
    metadata = _metadata_rows(request.form)
    if customer_has_attachments(customer):
        form.external_id.data = customer.external_id
        form.currency.data = customer.currency or ""
    if not form.validate():
        return _render_form(form, customer, 422, metadata)
    try:
        customer_service.update_customer(
            organization, customer, _payload_from_form(form), agent_actor()
        )
    except (ValidationFailed, NotFound) as exc:
        db.session.rollback()
        unplaced = apply_errors(form, _error_details(exc), field_message)
        return _render_form(form, customer, 422, metadata, unplaced)
    db.session.commit()
    flash("Customer saved.", "success")
    return redirect_htmx(url_for("console.customer", lago_id=customer.lago_id))


def _error_details(exc: ValidationFailed | NotFound) -> dict[str, Any]:
    """Field errors of a refused save; a tax deleted meanwhile is a `tax_codes` error."""
    return exc.details if isinstance(exc, ValidationFailed) else {"tax_codes": ["value_is_invalid"]}


def _form_data(customer: Customer) -> dict[str, Any]:
    names = (
        CustomerForm.IDENTITY + CustomerForm.CONTACT + CustomerForm.BILLING
        + CustomerForm.ADDRESS + CustomerForm.SHIPPING + CustomerForm.LOCALISATION
    )  # fmt: skip
    return {name: getattr(customer, name) for name in names} | {
        "tax_codes": [tax.code for tax in customer.taxes]
    }


def _metadata_of(customer: Customer) -> list[dict[str, Any]]:
    return [
        {"id": str(m.lago_id), "key": m.key, "value": m.value,
         "display_in_invoice": m.display_in_invoice}
        for m in customer.metadata_items
    ]  # fmt: skip


@bp.get("/customers/metadata-row")
def metadata_row() -> ResponseReturnValue:
    """One empty metadata row for the form (htmx appends it)."""
    index = max(0, int_arg(request.args.get("index"), 0))
    return render_template("console/_metadata_row_added.html", index=index, next_index=index + 1)


# --- view ------------------------------------------------------------------------------------


@bp.get("/customers/<int:customer_pk>/go")
def customer_by_pk(customer_pk: int) -> ResponseReturnValue:
    """Links from audit entries, which know the internal id."""
    customer = db.session.get(Customer, customer_pk)
    if customer is None or customer.organization_id != current_organization().id:
        abort(404)
    return redirect(url_for("console.customer", lago_id=customer.lago_id))


@bp.get("/customers/<uuid:lago_id>")
@bp.get("/customers/<uuid:lago_id>/<any(" + ",".join(TABS) + "):tab>")
def customer(lago_id: uuid.UUID, tab: str = "overview") -> ResponseReturnValue:
    """The support-first customer view: header with status and money, then tabs."""
    organization = current_organization()
    customer = customer_or_404(lago_id)
    context: dict[str, Any] = {"customer": customer, "tab": tab, "tabs": TABS}
    context.update(subscriptions.header_summary(customer))
    context["balances"] = analytics.customer_balances(customer)
    context["header_wallet"] = wallet_service.active_wallet(customer)
    if tab == "invoices":
        context.update(invoices.customer_tab_context(customer))
    elif tab == "subscriptions":
        context.update(
            subscriptions.subscriptions_tab_context(customer, live=request.args.get("live") == "1")
        )
    elif tab == "analytics":
        context.update(finance.customer_analytics_context(customer))
    elif tab == "wallet":
        context.update(coupons.customer_tab_context(customer))
        context.update(wallets.wallet_tab_context(customer))
    elif tab == "overview":
        context["recent"] = _activity(customer, limit=5)
        context["latest_invoices"] = invoices.latest_invoices(customer)
    elif tab == "activity":
        who = request.args.get("who", "")
        what = request.args.get("what", "")
        context.update(
            recent=_activity(customer, who=who, what=what, limit=200),
            who=who,
            what=what,
            actor_types=ACTOR_TYPES,
            activity_types=_activity_types(customer),
            deliveries=webhooks.list_deliveries(organization, customer=customer, limit=20),
            emails=mail_service.list_emails(organization, customer=customer, limit=20),
            status_labels=mail_views.STATUS_LABELS,
        )
    elif tab == "settings":
        context["invoice_email_settings"] = mail_views.CUSTOMER_SETTINGS
    return render_htmx(
        "console/customer.html",
        "console/_customer_tab.html",
        timezone=customer.applicable_timezone,
        org_timezone=organization.timezone,
        **context,
    )


def _activity(
    customer: Customer, *, who: str = "", what: str = "", limit: int
) -> list[ActivityLog]:
    query = select(ActivityLog).where(ActivityLog.customer_id == customer.id)
    if who:
        query = query.where(ActivityLog.actor_type == who)
    if what:
        query = query.where(ActivityLog.activity_type == what)
    return list(
        db.session.scalars(
            query.order_by(ActivityLog.created_at.desc(), ActivityLog.id.desc()).limit(limit)
        )
    )


def _activity_types(customer: Customer) -> list[str]:
    return sorted(
        db.session.scalars(
            select(ActivityLog.activity_type)
            .where(ActivityLog.customer_id == customer.id)
            .distinct()
        )
    )


# --- delete ----------------------------------------------------------------------------------


def deletion_consequences(customer: Customer) -> list[str]:
    """What deleting the customer does to what exists now (later capabilities add theirs)."""
    consequences = [
        "The customer leaves the customer list and the API; its external id "
        f"“{customer.external_id}” can be used again by a new customer.",
        "Its history stays in the audit log, and the customer stays reachable from there.",
    ]
    if customer.metadata_items:
        consequences.append(f"{len(customer.metadata_items)} metadata item(s) are kept with it.")
    if customer.integration_customers:
        names = ", ".join(i.integration_type for i in customer.integration_customers)
        consequences.append(f"Links to {names} are kept with it but no longer synced.")
    for subscription in subscription_service.customer_subscriptions(customer):
        if subscription.previous_subscription_id is not None:
            continue  # a scheduled downgrade goes with the subscription it replaces
        ends = (
            "is terminated and its last period billed"
            if subscription.status == "active"
            else "is canceled (not started)"
        )
        consequences.append(
            f"Subscription {subscription.external_id} to {subscription.plan.name} {ends}."
        )
    drafts = invoicing_service.count_customer_drafts(customer)
    if drafts:
        consequences.append(f"{drafts} draft invoice(s) are finalized now.")
    consequences.extend(coupons.deletion_consequences(customer))
    wallet = wallet_service.active_wallet(customer)
    if wallet is not None:
        consequences.append(wallets.deletion_consequence(wallet))
    consequences.append("Finalized invoices stay readable in the invoice lists and the API.")
    consequences.append("A customer.deleted webhook is sent to your endpoints.")
    return consequences


@bp.route("/customers/<uuid:lago_id>/delete", methods=["GET", "POST"])
@requires("write")
def delete_customer(lago_id: uuid.UUID) -> ResponseReturnValue:
    """Preview the consequences, then soft-delete after explicit confirmation."""
    organization = current_organization()
    customer = customer_or_404(lago_id, include_deleted=False)
    form = ConfirmDeleteForm()
    if request.method == "POST" and form.validate():
        customer_service.delete_customer(organization, customer, agent_actor())
        db.session.commit()
        flash(f"Customer {customer.display_name} deleted.", "success")
        return redirect_htmx(url_for("console.customers"))
    status = 422 if request.method == "POST" else 200
    return render_template(
        "console/customer_delete.html",
        customer=customer,
        form=form,
        consequences=deletion_consequences(customer),
    ), status
