"""/api/v1/subscriptions: create or change plan, list, show, update, terminate (lago-api.md §8)."""

from __future__ import annotations

from flask import jsonify, request
from flask.typing import ResponseReturnValue

from billing.models import Subscription
from billing.serializers_subscriptions import serialize_subscription
from billing.services import subscriptions as subscription_service
from blueprints.api import bp
from blueprints.api.auth import current_actor, current_organization
from blueprints.api.schemas import list_param, pagination, root_object
from extensions import db


@bp.post("/subscriptions")
def create_subscription() -> ResponseReturnValue:
    """Subscribe a customer (created if unknown) to a plan, or change its plan."""
    subscription = subscription_service.create_subscription(
        current_organization(), root_object("subscription"), current_actor()
    )
    db.session.commit()
    return _shown(subscription)


@bp.get("/subscriptions")
def list_subscriptions() -> ResponseReturnValue:
    """The organization's subscriptions, newest first; active ones unless `status[]` says."""
    page, per_page = pagination()
    filters = subscription_service.SubscriptionFilters(
        external_customer_id=request.args.get("external_customer_id") or None,
        plan_code=request.args.get("plan_code") or None,
        statuses=list_param("status") or ["active"],
        currency=(request.args.get("currency") or "").upper() or None,
    )
    result = subscription_service.list_subscriptions(
        current_organization(), filters, page=page, per_page=per_page
    )
    downgrades = subscription_service.next_subscriptions(result.items)
    return jsonify(
        subscriptions=[
            serialize_subscription(s, next_subscription=downgrades.get(s.id)) for s in result.items
        ],
        meta=result.meta(),
    )


def _subscription_or_404(external_id: str) -> Subscription:
    """The subscription with this external id in the status the query asks (active)."""
    return subscription_service.get_subscription(
        current_organization(), external_id, request.args.get("status") or "active"
    )


def _shown(subscription: Subscription) -> ResponseReturnValue:
    """The subscription as create, show, update and terminate answer: with its plan."""
    return jsonify(
        subscription=subscription_service.subscription_payload(subscription, include_plan=True)
    )


@bp.get("/subscriptions/<external_id>")
def show_subscription(external_id: str) -> ResponseReturnValue:
    """One subscription by external id (`?status=pending|terminated|canceled`)."""
    return _shown(_subscription_or_404(external_id))


@bp.put("/subscriptions/<external_id>")
def update_subscription(external_id: str) -> ResponseReturnValue:
    """Change the name, end date, termination options, or start of a pending subscription."""
    subscription = _subscription_or_404(external_id)
    subscription_service.update_subscription(
        current_organization(), subscription, root_object("subscription"), current_actor()
    )
    db.session.commit()
    return _shown(subscription)


@bp.delete("/subscriptions/<external_id>")
def terminate_subscription(external_id: str) -> ResponseReturnValue:
    """Terminate (nothing is deleted); `?status=pending` cancels a subscription not started."""
    subscription = _subscription_or_404(external_id)
    subscription_service.terminate_subscription(
        current_organization(),
        subscription,
        current_actor(),
        on_termination_invoice=request.args.get("on_termination_invoice") or None,
        on_termination_credit_note=request.args.get("on_termination_credit_note") or None,
    )
    db.session.commit()
    return _shown(subscription)
