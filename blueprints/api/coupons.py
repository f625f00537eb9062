"""/api/v1/coupons and /api/v1/applied_coupons: coupons by code, applying them to customers,
listing and removing applied coupons (lago-api.md §15)."""

from __future__ import annotations

from flask import jsonify, request
from flask.typing import ResponseReturnValue

from billing.errors import ValidationFailed
from billing.models import CouponStatus
from billing.serializers_coupons import serialize_applied_coupon, serialize_coupon
from billing.services import coupons as coupon_service
from billing.services.customers import get_customer
from blueprints.api import bp
from blueprints.api.auth import current_actor, current_organization
from blueprints.api.schemas import list_param, pagination, root_object
from extensions import db


@bp.post("/coupons")
def create_coupon() -> ResponseReturnValue:
    """Create a coupon; its code must be free among the organization's live coupons."""
    coupon = coupon_service.create_coupon(
        current_organization(), root_object("coupon"), current_actor()
    )
    db.session.commit()
    return jsonify(coupon=serialize_coupon(coupon))


@bp.get("/coupons")
def list_coupons() -> ResponseReturnValue:
    """The organization's live coupons, newest first."""
    page, per_page = pagination()
    result = coupon_service.list_coupons(
        current_organization(), page, per_page, search=request.args.get("search_term")
    )
    return jsonify(coupons=[serialize_coupon(c) for c in result.items], meta=result.meta())


@bp.get("/coupons/<code>")
def show_coupon(code: str) -> ResponseReturnValue:
    coupon = coupon_service.get_coupon(current_organization(), code)
    return jsonify(coupon=serialize_coupon(coupon))


@bp.put("/coupons/<code>")
def update_coupon(code: str) -> ResponseReturnValue:
    """Change the fields present (only name, description and expiry once applied)."""
    organization = current_organization()
    coupon = coupon_service.get_coupon(organization, code)
    coupon = coupon_service.update_coupon(
        organization, coupon, root_object("coupon"), current_actor()
    )
    db.session.commit()
    return jsonify(coupon=serialize_coupon(coupon))


@bp.delete("/coupons/<code>")
def delete_coupon(code: str) -> ResponseReturnValue:
    """Terminate and delete the coupon; its active applied coupons are terminated."""
    organization = current_organization()
    coupon = coupon_service.get_coupon(organization, code)
    coupon_service.delete_coupon(organization, coupon, current_actor())
    db.session.commit()
    return jsonify(coupon=serialize_coupon(coupon))


@bp.post("/applied_coupons")
def apply_coupon() -> ResponseReturnValue:
    """Apply a coupon to a customer, with optional overrides of its terms."""
    applied = coupon_service.apply_coupon(
        current_organization(), root_object("applied_coupon"), current_actor()
    )
    db.session.commit()
    return jsonify(applied_coupon=serialize_applied_coupon(applied))


def _applied_coupons(external_customer_id: str | None) -> ResponseReturnValue:
    status = request.args.get("status") or None
    if status is not None and status not in tuple(CouponStatus):
        raise ValidationFailed({"status": ["value_is_invalid"]})
    page, per_page = pagination()
    filters = coupon_service.AppliedCouponFilters(
        external_customer_id=external_customer_id,
        status=status,
        coupon_codes=list_param("coupon_code"),
    )
    result = coupon_service.list_applied_coupons(current_organization(), filters, page, per_page)
    return jsonify(
        applied_coupons=[serialize_applied_coupon(a) for a in result.items], meta=result.meta()
    )


@bp.get("/applied_coupons")
def list_applied_coupons() -> ResponseReturnValue:
    """Applied coupons, newest first; filters external_customer_id, status, coupon_code[]."""
    return _applied_coupons(request.args.get("external_customer_id") or None)


@bp.get("/customers/<external_id>/applied_coupons")
def list_customer_applied_coupons(external_id: str) -> ResponseReturnValue:
    """One customer's applied coupons (404 for an unknown customer)."""
    get_customer(current_organization(), external_id)
    return _applied_coupons(external_id)


@bp.delete("/customers/<external_id>/applied_coupons/<applied_coupon_id>")
def remove_applied_coupon(external_id: str, applied_coupon_id: str) -> ResponseReturnValue:
    """Terminate one of the customer's applied coupons."""
    customer = get_customer(current_organization(), external_id)
    applied = coupon_service.get_applied_coupon(customer, applied_coupon_id)
    coupon_service.remove_applied_coupon(applied, current_actor())
    db.session.commit()
    return jsonify(applied_coupon=serialize_applied_coupon(applied))
