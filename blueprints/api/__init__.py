"""The REST API at /api/v1 (Lago v1 compatible), authenticated by Bearer API keys."""

from flask import Blueprint

bp = Blueprint("api", __name__, url_prefix="/api/v1")

from blueprints.api import (  # noqa: E402,F401  (registers handlers)
    activity_logs,
    add_ons,
    analytics,
    auth,
    billable_metrics,
    coupons,
    credit_notes,
    customers,
    errors,
    events,
    invoices,
    payments,
    plans,
    reference,
    subscriptions,
    taxes,
    usage,
    wallets,
    webhooks,
)
