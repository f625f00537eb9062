"""/api/v1/customers/<external_id>/current_usage: the current period's usage and amounts."""

from __future__ import annotations

from flask import jsonify, request
from flask.typing import ResponseReturnValue

from billing.serializers_usage import serialize_customer_usage
from billing.services import usage as usage_service
from blueprints.api import bp
from blueprints.api.auth import current_organization


@bp.get("/customers/<external_id>/current_usage")
def current_usage(external_id: str) -> ResponseReturnValue:
    """Usage of the customer's active subscription `external_subscription_id` so far."""
    subscription = usage_service.active_subscription_for_usage(
        current_organization(), external_id, request.args.get("external_subscription_id")
    )
    # Lago applies taxes unless told `apply_taxes=false`.
    apply_taxes = request.args.get("apply_taxes", "true").lower() not in ("false", "0")
    usage = usage_service.current_usage(subscription, apply_taxes=apply_taxes)
    return jsonify(customer_usage=serialize_customer_usage(usage))
