"""The dashboard: where an agent lands after signing in."""

from __future__ import annotations

from datetime import timedelta

from flask import render_template
from flask.typing import ResponseReturnValue
from sqlalchemy import func, select

from billing.models import ActivityLog, Customer
from billing.timeutil import now_utc
from blueprints.console import bp
from blueprints.console.helpers import current_organization
from extensions import db


@bp.get("/")
def dashboard() -> ResponseReturnValue:
    """Counts that matter to support and the latest activity of the organization."""
    organization = current_organization()
    live = (Customer.organization_id == organization.id, Customer.deleted_at.is_(None))
    customers = db.session.scalar(select(func.count(Customer.id)).where(*live)) or 0
    month_ago = now_utc() - timedelta(days=30)
    new_this_month = db.session.scalar(
        select(func.count(Customer.id)).where(*live, Customer.created_at >= month_ago)
    )
    recent = db.session.scalars(
        select(ActivityLog)
        .where(ActivityLog.organization_id == organization.id)
        .order_by(ActivityLog.created_at.desc(), ActivityLog.id.desc())
        .limit(12)
    ).all()
    return render_template(
        "console/dashboard.html",
        customers=customers,
        new_this_month=new_this_month or 0,
        month_ago=month_ago.date().isoformat(),
        recent=recent,
    )
