"""The organization's audit log: every change by agents, API keys, the portal and webhooks."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from flask import request, url_for
from flask.typing import ResponseReturnValue
from werkzeug.datastructures import MultiDict

from billing.services import audit as audit_service
from billing.services.audit import ActivityFilters
from blueprints.console import bp
from blueprints.console.customers import ACTOR_TYPES
from blueprints.console.helpers import (
    current_organization,
    date_arg,
    int_arg,
    is_htmx,
    render_htmx,
)

PER_PAGE = 50


@dataclass
class AuditQuery:
    """The audit page's state, read from and written back to the URL (shareable views)."""

    who: str = ""
    what: str = ""
    resource: str = ""
    resource_id: str = ""
    date_from: date | None = None
    date_to: date | None = None
    page: int = 1

    @classmethod
    def from_args(cls, args: MultiDict[str, str]) -> AuditQuery:
        return cls(
            who=v if (v := args.get("who", "")) in ACTOR_TYPES else "",
            what=args.get("what", "").strip()[:64],
            resource=args.get("resource", "").strip()[:32],
            resource_id=args.get("resource_id", "").strip()[:64],
            date_from=date_arg(args.get("from")),
            date_to=date_arg(args.get("to")),
            page=max(1, int_arg(args.get("page"), 1)),
        )

    def filters(self, timezone: str) -> ActivityFilters:
        """Dates are whole days in the organization's time zone, both ends included."""
        zone = ZoneInfo(timezone)
        return ActivityFilters(
            actor_types=[self.who] if self.who else [],
            activity_types=[self.what] if self.what else [],
            resource_types=[self.resource] if self.resource else [],
            resource_ids=[self.resource_id] if self.resource_id else [],
            created_from=datetime.combine(self.date_from, time(), zone) if self.date_from else None,
            created_before=(
                datetime.combine(self.date_to + timedelta(days=1), time(), zone)
                if self.date_to
                else None
            ),
        )

    def args(self, **changes: Any) -> list[tuple[str, str]]:
        """Query-string pairs for this state with `changes`; defaults are left out."""
        state = replace(self, **changes)
        pairs = [
            (name, value)
            for name, value in (("who", state.who), ("what", state.what),
                                ("resource", state.resource), ("resource_id", state.resource_id))
            if value
        ]  # fmt: skip
        if state.date_from:
            pairs.append(("from", state.date_from.isoformat()))
        if state.date_to:
            pairs.append(("to", state.date_to.isoformat()))
        if state.page != 1:
            pairs.append(("page", str(state.page)))
        return pairs

    def url(self, **changes: Any) -> str:
        pairs = self.args(**changes)
        return url_for("console.audit_log") + ("?" + urlencode(pairs) if pairs else "")

    @property
    def is_filtered(self) -> bool:
        return bool(self.args(page=1))


@bp.get("/audit")
def audit_log() -> ResponseReturnValue:
    """Organization-wide entries, newest first, filtered by who, what, resource and dates;
    htmx requests (filters, paging) get the table only."""
    organization = current_organization()
    query = AuditQuery.from_args(request.args)
    page = audit_service.list_activity_logs(
        organization, query.filters(organization.timezone), page=query.page, per_page=PER_PAGE
    )
    activity_types, resource_types = audit_service.activity_facets(organization)
    body, status = render_htmx(
        "console/audit.html",
        "console/_audit_table.html",
        query=query,
        page=page,
        recent=page.items,
        show_customer_links=True,
        actor_types=ACTOR_TYPES,
        activity_types=activity_types,
        resource_types=resource_types,
    )
    # The address bar gets the canonical URL, without the empty fields the form also sends.
    return body, status, {"HX-Push-Url": query.url()} if is_htmx() else {}
