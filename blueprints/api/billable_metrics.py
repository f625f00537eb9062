"""/api/v1/billable_metrics: create, list, show, update, soft delete (lago-api.md §6)."""

from __future__ import annotations

from flask import jsonify, request
from flask.typing import ResponseReturnValue

from billing.serializers_plans import serialize_billable_metric
from billing.services import metrics as metric_service
from blueprints.api import bp
from blueprints.api.auth import current_actor, current_organization
from blueprints.api.schemas import pagination, root_object
from extensions import db


@bp.post("/billable_metrics")
def create_billable_metric() -> ResponseReturnValue:
    """Create a metric; its code must be free among the organization's live metrics."""
    metric = metric_service.create_billable_metric(
        current_organization(), root_object("billable_metric"), current_actor()
    )
    db.session.commit()
    return jsonify(billable_metric=serialize_billable_metric(metric))


@bp.get("/billable_metrics")
def list_billable_metrics() -> ResponseReturnValue:
    """The organization's live metrics, newest first."""
    page, per_page = pagination()
    result = metric_service.list_billable_metrics(
        current_organization(), page, per_page, search=request.args.get("search_term")
    )
    return jsonify(
        billable_metrics=[serialize_billable_metric(m) for m in result.items], meta=result.meta()
    )


@bp.get("/billable_metrics/<code>")
def show_billable_metric(code: str) -> ResponseReturnValue:
    """One live metric by code."""
    metric = metric_service.get_billable_metric(current_organization(), code)
    return jsonify(billable_metric=serialize_billable_metric(metric))


@bp.put("/billable_metrics/<code>")
def update_billable_metric(code: str) -> ResponseReturnValue:
    """Change the fields present in the payload."""
    organization = current_organization()
    metric = metric_service.get_billable_metric(organization, code)
    metric = metric_service.update_billable_metric(
        organization, metric, root_object("billable_metric"), current_actor()
    )
    db.session.commit()
    return jsonify(billable_metric=serialize_billable_metric(metric))


@bp.delete("/billable_metrics/<code>")
def delete_billable_metric(code: str) -> ResponseReturnValue:
    """Soft-delete the metric and the charges pricing it; answers with the deleted metric."""
    organization = current_organization()
    metric = metric_service.get_billable_metric(organization, code)
    metric_service.delete_billable_metric(organization, metric, current_actor())
    db.session.commit()
    return jsonify(billable_metric=serialize_billable_metric(metric))
