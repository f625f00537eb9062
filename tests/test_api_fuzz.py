"""Schemathesis calls every operation of the OpenAPI description on a live server.

For each operation it generates requests from the description (valid ones and, for a share,
invalid ones), sends them with the organization's API key, and checks every answer: no 5xx,
a documented status code, a body that matches the documented schema (errors in Lago's shapes)
and JSON whenever JSON is documented. The organization is seeded with one of everything, and a
path parameter is, about half the time, the id of a seeded object, so that the positive paths
(show, update, finalize, void, …) run too. Deletions run last, so they do not empty the
organization under the other operations.

Bounded and deterministic: MAX_EXAMPLES per operation, `derandomize=True`, no deadline. It runs
on every backend (about 2½ minutes on SQLite, 1 on PostgreSQL with 2 cores): PostgreSQL refuses
input SQLite takes (a NUL character in text), so it finds bugs of its own. Run it alone with
`python -m pytest tests/test_api_fuzz.py -q -p no:cacheprovider` (FUZZ_EXAMPLES=N for more).
"""

from __future__ import annotations

import os
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from blueprints.api.openapi import build_spec

schemathesis = pytest.importorskip("schemathesis")

pytestmark = pytest.mark.live

MAX_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "12"))
FUZZ_SETTINGS = settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)


def _load(spec: dict[str, Any]) -> Any:
    # The coverage phase's exhaustive variants of every field would take minutes on 2 cores:
    # the examples of the description and MAX_EXAMPLES generated cases per operation run.
    config = schemathesis.Config.from_dict({"phases": {"coverage": {"enabled": False}}})
    schema = schemathesis.openapi.from_dict(spec, config=config)

    @schema.hook
    def flatmap_path_parameters(context: Any, path_parameters: dict[str, Any]) -> Any:
        """Half the time, the seeded object's id instead of a made-up one."""
        known = _known_parameters(context.operation.path, path_parameters or {})
        if not known:
            return st.just(path_parameters)
        return st.sampled_from([path_parameters, {**path_parameters, **known}])

    @schema.hook
    def flatmap_query(context: Any, query: dict[str, Any]) -> Any:
        """Half the time, filters on the seeded customer and subscription."""
        known = _known_references(query or {})
        return st.sampled_from([query, {**query, **known}]) if known else st.just(query)

    @schema.hook
    def flatmap_body(context: Any, body: Any) -> Any:
        """Half the time, the references of the body (plan_code, invoice_id…) name seeded
        objects, so that creations get past their lookups."""
        if not isinstance(body, dict) or not SEED:
            return st.just(body)
        return st.sampled_from([body, _with_known_references(body)])

    return schema


SEED: dict[str, str] = {}
#: body and query fields that name another object, and the seeded object they can name
REFERENCES = {
    "external_customer_id": "customer",
    "external_subscription_id": "subscription",
    "plan_code": "plan",
    "billable_metric_id": "metric_id",
    "billable_metric_code": "metric",
    "invoice_id": "invoice",
    "fee_id": "fee",
    "wallet_id": "wallet",
    "coupon_code": "coupon",
    "add_on_code": "add_on",
    "code": "metric",  # an event's metric code
}


def _known_references(fields: dict[str, Any]) -> dict[str, str]:
    return {
        name: SEED[REFERENCES[name]]
        for name in fields
        if name in REFERENCES and name != "code" and REFERENCES[name] in SEED
    }


def _with_known_references(node: Any) -> Any:
    """A copy of a body with every reference field set to the seeded object's."""
    if isinstance(node, list):
        return [_with_known_references(item) for item in node]
    if not isinstance(node, dict):
        return node
    return {
        key: SEED[REFERENCES[key]]
        if key in REFERENCES and REFERENCES[key] in SEED and isinstance(value, str)
        else _with_known_references(value)
        for key, value in node.items()
    }


def _known_parameters(path: str, generated: dict[str, Any]) -> dict[str, str]:
    """The seeded objects' ids for a path's parameters (filled by the `seeded` fixture, which
    runs before any example is generated)."""
    by_prefix = {
        "/api/v1/customers/": {"external_id": "customer"},
        "/api/v1/subscriptions/": {"external_id": "subscription"},
        "/api/v1/billable_metrics/": {"code": "metric"},
        "/api/v1/plans/": {"code": "plan", "charge_code": "charge", "lago_id": "filter"},
        "/api/v1/events/": {"transaction_id": "event"},
        "/api/v1/taxes/": {"code": "tax"},
        "/api/v1/add_ons/": {"code": "add_on"},
        "/api/v1/coupons/": {"code": "coupon"},
        "/api/v1/wallets/": {"lago_id": "wallet"},
        "/api/v1/wallet_transactions/": {"lago_id": "wallet_transaction"},
        "/api/v1/webhook_endpoints/": {"lago_id": "webhook_endpoint"},
        "/api/v1/activity_logs/": {"activity_id": "activity"},
        "/api/v1/credit_notes/": {"lago_id": "credit_note", "key": "metadata_key"},
    }
    known: dict[str, str] = {}
    for prefix, names in by_prefix.items():
        if path.startswith(prefix):
            for name, seed_key in names.items():
                if name in generated and seed_key in SEED:
                    known[name] = SEED[seed_key]
    if path.startswith("/api/v1/invoices/") and "lago_id" in generated and SEED:
        action = path.rsplit("/", 1)[1]
        known["lago_id"] = SEED["draft_invoice" if action in ("finalize", "refresh") else "invoice"]
    if "applied_coupon_id" in generated and SEED:
        known["applied_coupon_id"] = SEED["applied_coupon"]
    if path.startswith("/api/v1/plans/") and "key" in generated:
        known["key"] = "tier"
    return known


def _seed(base_url: str, api_key: str) -> dict[str, str]:
    """One of everything, made through the API itself."""
    seed: dict[str, str] = {}
    with httpx.Client(
        base_url=f"{base_url}/api/v1", headers={"Authorization": f"Bearer {api_key}"}
    ) as http:

        def post(path: str, payload: dict[str, Any], method: str = "POST") -> dict[str, Any]:
            response = http.request(method, path, json=payload)
            assert response.status_code == 200, (path, response.text)
            return response.json()

        seed["tax"] = post("/taxes", {"tax": {"name": "VAT", "code": "vat", "rate": "20"}})["tax"][
            "code"
        ]
        metric = post(
            "/billable_metrics",
            {
                "billable_metric": {
                    "name": "Calls",
                    "code": "calls",
                    "aggregation_type": "sum_agg",
                    "field_name": "n",
                    "filters": [{"key": "region", "values": ["eu", "us"]}],
                }
            },
        )["billable_metric"]
        seed["metric"] = metric["code"]
        seed["metric_id"] = metric["lago_id"]
        plan = post(
            "/plans",
            {
                "plan": {
                    "name": "Pro",
                    "code": "pro",
                    "interval": "monthly",
                    "amount_cents": 5000,
                    "amount_currency": "EUR",
                    "pay_in_advance": True,
                    "metadata": {"tier": "gold"},
                    "charges": [
                        {
                            "billable_metric_id": metric["lago_id"],
                            "code": "calls_std",
                            "charge_model": "standard",
                            "properties": {"amount": "0.5"},
                            "filters": [
                                {"values": {"region": ["eu"]}, "properties": {"amount": "0.4"}}
                            ],
                        }
                    ],
                }
            },
        )["plan"]
        seed["plan"] = plan["code"]
        seed["charge"] = plan["charges"][0]["code"]
        seed["filter"] = plan["charges"][0]["filters"][0]["lago_id"]
        # one customer whose invoices wait as drafts, one whose are finalized at once
        post(
            "/customers",
            {
                "customer": {
                    "external_id": "fuzz-draft",
                    "currency": "EUR",
                    "billing_configuration": {"invoice_grace_period": 5},
                }
            },
        )
        seed["customer"] = post(
            "/customers",
            {
                "customer": {
                    "external_id": "fuzz-cust",
                    "name": "Fuzz Co",
                    "currency": "EUR",
                    "metadata": [{"key": "crm", "value": "42"}],
                    "billing_configuration": {"invoice_grace_period": 0},
                }
            },
        )["customer"]["external_id"]
        post(
            "/subscriptions",
            {
                "subscription": {
                    "external_customer_id": "fuzz-draft",
                    "plan_code": "pro",
                    "external_id": "fuzz-draft-sub",
                }
            },
        )
        seed["subscription"] = post(
            "/subscriptions",
            {
                "subscription": {
                    "external_customer_id": "fuzz-cust",
                    "plan_code": "pro",
                    "external_id": "fuzz-sub",
                }
            },
        )["subscription"]["external_id"]
        seed["event"] = post(
            "/events",
            {
                "event": {
                    "transaction_id": "fuzz-tr-1",
                    "external_subscription_id": "fuzz-sub",
                    "code": "calls",
                    "properties": {"n": 3, "region": "eu"},
                }
            },
        )["event"]["transaction_id"]
        invoices = http.get("/invoices").json()["invoices"]
        seed["draft_invoice"] = next(i["lago_id"] for i in invoices if i["status"] == "draft")
        finalized = next(i for i in invoices if i["status"] == "finalized")
        seed["invoice"] = finalized["lago_id"]
        fee = http.get(f"/invoices/{finalized['lago_id']}").json()["invoice"]["fees"][0]
        seed["fee"] = fee["lago_id"]
        credit_note = post(
            "/credit_notes",
            {
                "credit_note": {
                    "invoice_id": finalized["lago_id"],
                    "reason": "other",
                    "credit_amount_cents": 100,
                    "refund_amount_cents": 0,
                    "items": [{"fee_id": fee["lago_id"], "amount_cents": 100}],
                    "metadata": {"ticket": "T-1"},
                }
            },
        )["credit_note"]
        seed["credit_note"] = credit_note["lago_id"]
        seed["metadata_key"] = "ticket"
        seed["add_on"] = post(
            "/add_ons",
            {
                "add_on": {
                    "name": "Setup",
                    "code": "setup",
                    "amount_cents": 1000,
                    "amount_currency": "EUR",
                }
            },
        )["add_on"]["code"]
        post(
            "/invoices",
            {"invoice": {"external_customer_id": "fuzz-cust", "fees": [{"add_on_code": "setup"}]}},
        )
        seed["coupon"] = post(
            "/coupons",
            {
                "coupon": {
                    "name": "Welcome",
                    "code": "welcome",
                    "coupon_type": "fixed_amount",
                    "amount_cents": 500,
                    "amount_currency": "EUR",
                    "frequency": "once",
                    "expiration": "no_expiration",
                }
            },
        )["coupon"]["code"]
        seed["applied_coupon"] = post(
            "/applied_coupons",
            {"applied_coupon": {"external_customer_id": "fuzz-cust", "coupon_code": "welcome"}},
        )["applied_coupon"]["lago_id"]
        wallet = post(
            "/wallets",
            {
                "wallet": {
                    "external_customer_id": "fuzz-cust",
                    "currency": "EUR",
                    "rate_amount": "1",
                    "granted_credits": "10",
                }
            },
        )["wallet"]
        seed["wallet"] = wallet["lago_id"]
        seed["wallet_transaction"] = http.get(
            f"/wallets/{wallet['lago_id']}/wallet_transactions"
        ).json()["wallet_transactions"][0]["lago_id"]
        seed["webhook_endpoint"] = post(
            "/webhook_endpoints",
            {
                "webhook_endpoint": {
                    "webhook_url": "https://example.com/h",
                    "signature_algo": "hmac",
                }
            },
        )["webhook_endpoint"]["lago_id"]
        seed["activity"] = http.get("/activity_logs").json()["activity_logs"][0]["activity_id"]
    return seed


@pytest.fixture(scope="module")
def fuzz_target(live_server: Any) -> tuple[str, dict[str, str]]:
    """The live server's URL and the seeded organization's Authorization header."""
    _organization_id, api_key = live_server.new_organization()
    SEED.clear()
    SEED.update(_seed(live_server.url, api_key))
    return live_server.url, {"Authorization": f"Bearer {api_key}"}


#: operations whose path is also another route's path with an id in it: another method there
#: reaches that route (`GET /credit_notes/estimate` is the credit note "estimate": 404)
SHADOWING = {"/api/v1/credit_notes/estimate", "/api/v1/events/batch"}


def _check(case: Any, target: tuple[str, dict[str, str]]) -> None:
    base_url, headers = target
    excluded = [
        # Lago's API accepts what it can read and ignores the rest (unknown keys, wrong types
        # of optional fields it does not use): schema-invalid input is not always refused, and
        # schema-valid input is often refused by business rules (422, 404).
        schemathesis.checks.negative_data_rejection,
        schemathesis.checks.positive_data_acceptance,
    ]
    if case.operation.path in SHADOWING:
        excluded += [
            schemathesis.checks.unsupported_method,
            schemathesis.checks.allow_header_conformance,
        ]
    case.call_and_validate(base_url=base_url, headers=headers, timeout=30, excluded_checks=excluded)


_all = _load(build_spec())
schema = _all.exclude(method="DELETE")
deletions = _all.include(method="DELETE")


@schema.parametrize()
@FUZZ_SETTINGS
def test_operation(case: Any, fuzz_target: tuple[str, dict[str, str]]) -> None:
    _check(case, fuzz_target)


@deletions.parametrize()
@FUZZ_SETTINGS
def test_deletion(case: Any, fuzz_target: tuple[str, dict[str, str]]) -> None:
    _check(case, fuzz_target)
