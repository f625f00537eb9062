"""/api/v1/plans: plans with their charges, charge filters and metadata (lago-api.md §7)."""

from __future__ import annotations

from typing import Any

from flask import jsonify, request
from flask.typing import ResponseReturnValue

from billing.models import Charge, Plan
from billing.serializers_plans import serialize_charge, serialize_charge_filter, serialize_plan
from billing.services import plans as plan_service
from blueprints.api import bp
from blueprints.api.auth import current_actor, current_organization
from blueprints.api.schemas import pagination, root_object
from extensions import db


def _plan_json(plan: Plan) -> dict[str, Any]:
    return serialize_plan(plan, plan_service.plan_counts([plan]).get(plan.id))


def _charge_or_404(code: str, charge_code: str) -> tuple[Plan, Charge]:
    plan = plan_service.get_plan(current_organization(), code)
    return plan, plan_service.get_charge(plan, charge_code)


@bp.post("/plans")
def create_plan() -> ResponseReturnValue:
    """Create a plan with its charges."""
    plan = plan_service.create_plan(current_organization(), root_object("plan"), current_actor())
    db.session.commit()
    return jsonify(plan=_plan_json(plan))


@bp.get("/plans")
def list_plans() -> ResponseReturnValue:
    """The organization's live plans, newest first."""
    page, per_page = pagination()
    result = plan_service.list_plans(
        current_organization(), page, per_page, search=request.args.get("search_term")
    )
    counts = plan_service.plan_counts(result.items)
    return jsonify(
        plans=[serialize_plan(p, counts.get(p.id)) for p in result.items], meta=result.meta()
    )


@bp.get("/plans/<code>")
def show_plan(code: str) -> ResponseReturnValue:
    """One live plan by code."""
    return jsonify(plan=_plan_json(plan_service.get_plan(current_organization(), code)))


@bp.put("/plans/<code>")
def update_plan(code: str) -> ResponseReturnValue:
    """Change the fields present; `charges`, when present, is the plan's new list of charges."""
    organization = current_organization()
    plan = plan_service.get_plan(organization, code)
    plan = plan_service.update_plan(organization, plan, root_object("plan"), current_actor())
    db.session.commit()
    return jsonify(plan=_plan_json(plan))


@bp.delete("/plans/<code>")
def delete_plan(code: str) -> ResponseReturnValue:
    """Soft-delete a plan without active or pending subscriptions."""
    organization = current_organization()
    plan = plan_service.get_plan(organization, code)
    plan_service.delete_plan(organization, plan, current_actor())
    db.session.commit()
    return jsonify(plan=_plan_json(plan))


# --- charges -----------------------------------------------------------------------------


@bp.get("/plans/<code>/charges")
def list_charges(code: str) -> ResponseReturnValue:
    """The plan's live charges."""
    plan = plan_service.get_plan(current_organization(), code)
    page, per_page = pagination()
    result = plan_service.list_charges(plan, page, per_page)
    return jsonify(charges=[serialize_charge(c) for c in result.items], meta=result.meta())


@bp.post("/plans/<code>/charges")
def create_charge(code: str) -> ResponseReturnValue:
    """Add a charge to the plan."""
    organization = current_organization()
    plan = plan_service.get_plan(organization, code)
    charge = plan_service.create_charge(organization, plan, root_object("charge"), current_actor())
    db.session.commit()
    return jsonify(charge=serialize_charge(charge))


@bp.get("/plans/<code>/charges/<charge_code>")
def show_charge(code: str, charge_code: str) -> ResponseReturnValue:
    _plan, charge = _charge_or_404(code, charge_code)
    return jsonify(charge=serialize_charge(charge))


@bp.put("/plans/<code>/charges/<charge_code>")
def update_charge(code: str, charge_code: str) -> ResponseReturnValue:
    """Change the fields present on one charge."""
    plan, charge = _charge_or_404(code, charge_code)
    charge = plan_service.update_charge(
        current_organization(), plan, charge, root_object("charge"), current_actor()
    )
    db.session.commit()
    return jsonify(charge=serialize_charge(charge))


@bp.delete("/plans/<code>/charges/<charge_code>")
def delete_charge(code: str, charge_code: str) -> ResponseReturnValue:
    """Remove a charge from the plan; answers with the removed charge."""
    plan, charge = _charge_or_404(code, charge_code)
    body = serialize_charge(charge)
    plan_service.delete_charge(current_organization(), plan, charge, current_actor())
    db.session.commit()
    return jsonify(charge=body)


# --- charge filters ----------------------------------------------------------------------


@bp.get("/plans/<code>/charges/<charge_code>/filters")
def list_charge_filters(code: str, charge_code: str) -> ResponseReturnValue:
    _plan, charge = _charge_or_404(code, charge_code)
    page, per_page = pagination()
    result = plan_service.list_charge_filters(charge, page, per_page)
    return jsonify(filters=[serialize_charge_filter(f) for f in result.items], meta=result.meta())


@bp.post("/plans/<code>/charges/<charge_code>/filters")
def create_charge_filter(code: str, charge_code: str) -> ResponseReturnValue:
    """Add a filter (other prices for matching events) to a charge."""
    plan, charge = _charge_or_404(code, charge_code)
    charge_filter = plan_service.create_charge_filter(
        current_organization(), plan, charge, root_object("filter"), current_actor()
    )
    db.session.commit()
    return jsonify(filter=serialize_charge_filter(charge_filter))


@bp.get("/plans/<code>/charges/<charge_code>/filters/<lago_id>")
def show_charge_filter(code: str, charge_code: str, lago_id: str) -> ResponseReturnValue:
    _plan, charge = _charge_or_404(code, charge_code)
    return jsonify(filter=serialize_charge_filter(plan_service.get_charge_filter(charge, lago_id)))


@bp.put("/plans/<code>/charges/<charge_code>/filters/<lago_id>")
def update_charge_filter(code: str, charge_code: str, lago_id: str) -> ResponseReturnValue:
    plan, charge = _charge_or_404(code, charge_code)
    charge_filter = plan_service.update_charge_filter(
        current_organization(),
        plan,
        charge,
        plan_service.get_charge_filter(charge, lago_id),
        root_object("filter"),
        current_actor(),
    )
    db.session.commit()
    return jsonify(filter=serialize_charge_filter(charge_filter))


@bp.delete("/plans/<code>/charges/<charge_code>/filters/<lago_id>")
def delete_charge_filter(code: str, charge_code: str, lago_id: str) -> ResponseReturnValue:
    plan, charge = _charge_or_404(code, charge_code)
    charge_filter = plan_service.get_charge_filter(charge, lago_id)
    plan_service.delete_charge_filter(
        current_organization(), plan, charge, charge_filter, current_actor()
    )
    db.session.commit()
    return jsonify(filter=serialize_charge_filter(charge_filter))


# --- metadata ----------------------------------------------------------------------------


@bp.route("/plans/<code>/metadata", methods=["POST", "PATCH"])
def write_plan_metadata(code: str) -> ResponseReturnValue:
    """POST replaces the plan's metadata map; PATCH adds or overwrites the given keys."""
    organization = current_organization()
    plan = plan_service.get_plan(organization, code)
    write = (
        plan_service.replace_plan_metadata
        if request.method == "POST"
        else plan_service.merge_plan_metadata
    )
    metadata = write(organization, plan, root_object("metadata"), current_actor())
    db.session.commit()
    return jsonify(metadata=metadata)


@bp.delete("/plans/<code>/metadata")
@bp.delete("/plans/<code>/metadata/<key>")
def delete_plan_metadata(code: str, key: str | None = None) -> ResponseReturnValue:
    """Remove one key, or all of them."""
    organization = current_organization()
    plan = plan_service.get_plan(organization, code)
    metadata = plan_service.delete_plan_metadata(organization, plan, current_actor(), key)
    db.session.commit()
    return jsonify(metadata=metadata)
