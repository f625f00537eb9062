"""Demo data for `make run`: a demo organization, its fixed (demo-only) credentials, customers.

Running it again adds nothing. Later capabilities extend it with their own objects.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select

from billing.demo_add_ons import seed_add_ons
from billing.demo_mail import seed_mail
from billing.demo_metering import MeteringSummary, seed_metering
from billing.demo_offsets import seed_offset
from billing.demo_payments import seed_payments
from billing.demo_taxes import seed_taxes
from billing.demo_webhooks import seed_webhooks
from billing.errors import NotFound
from billing.models import Agent, ApiKey, Customer, Organization, SavedView
from billing.services import audit
from billing.services.customers import (
    delete_customer,
    find_customer,
    update_customer,
    upsert_customer,
)
from billing.services.organizations import (
    create_agent,
    create_api_key,
    create_organization,
    find_organization,
    hash_api_key,
)
from extensions import db

DEMO_ORG_NAME = "Demo Org"
# Fixed and published on purpose so a newcomer can try the API at once. DEMO ONLY.
DEMO_API_KEY = "ll_demo_0123456789abcdef0123456789abcdef"
DEMO_ADMIN_EMAIL = "admin@demo.ledgerline.test"
DEMO_ADMIN_PASSWORD = "demo-admin-password"  # noqa: S105  (published demo credential)
#: more demo agents, to try the roles; same password
DEMO_AGENTS = {"support@demo.ledgerline.test": "support", "viewer@demo.ledgerline.test": "viewer"}
#: saved views of the demo admin: name → list query string
DEMO_VIEWS = {
    "Enterprise tier": "q=enterprise",
    "Nordics": "meta_key=region&meta_value=nordics",
    "Euro customers": "currency=EUR",
}

SEED = audit.Actor(type="system", source="cli", label="demo seed")
#: Soylent's invoice grace period: longer than any month, so its invoice of the month that just
#: ended is always a draft however late in the month the demo is seeded
DRAFT_GRACE_DAYS = 45


def _customer(
    external_id: str,
    name: str,
    email: str,
    country: str,
    currency: str,
    timezone: str,
    locale: str,
    **extra: Any,
) -> dict[str, Any]:
    return {
        "external_id": external_id,
        "name": name,
        "email": email,
        "country": country,
        "currency": currency,
        "timezone": timezone,
        "billing_configuration": {"document_locale": locale},
        **extra,
    }


DEMO_CUSTOMERS: list[dict[str, Any]] = [
    _customer(
        "acme-corp",
        "Acme Corporation",
        "billing@acme.test",
        "US",
        "USD",
        "America/New_York",
        "en",
        customer_type="company",
        legal_name="Acme Corporation Inc.",
        legal_number="DE-884213",
        tax_identification_number="US-12-3456789",
        address_line1="1 Infinite Loop",
        city="New York",
        state="NY",
        zipcode="10001",
        phone="+1 212 555 0100",
        external_salesforce_id="0015g00000Acme01",
        metadata=[
            {"key": "plan_tier", "value": "enterprise", "display_in_invoice": False},
            {"key": "account_manager", "value": "Dana Whitfield", "display_in_invoice": False},
            {"key": "po_number", "value": "PO-2026-4410", "display_in_invoice": True},
        ],
        integration_customers=[
            {
                "integration_type": "hubspot",
                "integration_code": "hubspot",
                "external_customer_id": "hs-90211",
            },
        ],
    ),
    _customer(
        "globex",
        "Globex GmbH",
        "finance@globex.test",
        "DE",
        "EUR",
        "Europe/Berlin",
        "de",
        customer_type="company",
        legal_name="Globex GmbH",
        tax_identification_number="DE811907980",
        address_line1="Friedrichstraße 68",
        city="Berlin",
        zipcode="10117",
        metadata=[{"key": "plan_tier", "value": "growth", "display_in_invoice": False}],
    ),
    _customer(
        "initech",
        "Initech SAS",
        "compta@initech.test",
        "FR",
        "EUR",
        "Europe/Paris",
        "fr",
        customer_type="company",
        legal_name="Initech SAS",
        tax_identification_number="FR40303265045",
        address_line1="12 rue de Rivoli",
        city="Paris",
        zipcode="75004",
        metadata=[{"key": "region", "value": "emea-west", "display_in_invoice": False}],
    ),
    _customer(
        "umbrella-health",
        "Umbrella Health Ltd",
        "ap@umbrella.test",
        "GB",
        "GBP",
        "Europe/London",
        "en",
        customer_type="company",
        address_line1="221B Baker Street",
        city="London",
        zipcode="NW1 6XE",
        metadata=[{"key": "plan_tier", "value": "enterprise", "display_in_invoice": False}],
    ),
    _customer(
        "hooli",
        "Hooli",
        "dinesh@hooli.test",
        "US",
        "USD",
        "America/Los_Angeles",
        "en",
        customer_type="company",
        city="Palo Alto",
        state="CA",
        zipcode="94301",
        billing_configuration={
            "document_locale": "en",
            "payment_provider": "stripe",
            "provider_customer_id": "cus_Hooli4242",
        },
        metadata=[{"key": "segment", "value": "strategic", "display_in_invoice": False}],
    ),
    _customer(
        "pied-piper",
        "Pied Piper",
        "richard@piedpiper.test",
        "US",
        "USD",
        "America/Los_Angeles",
        "en",
        customer_type="company",
        city="Palo Alto",
        state="CA",
        metadata=[{"key": "plan_tier", "value": "startup", "display_in_invoice": False}],
    ),
    _customer(
        "vandelay",
        "Vandelay Industries",
        "art@vandelay.test",
        "US",
        "USD",
        "America/Chicago",
        "en",
        customer_type="company",
        city="Chicago",
        state="IL",
    ),
    _customer(
        "soylent",
        "Soylent Foods BV",
        "factuur@soylent.test",
        "NL",
        "EUR",
        "Europe/Amsterdam",
        "nl",
        customer_type="company",
        city="Amsterdam",
        zipcode="1012 JS",
        tax_identification_number="NL859848215B01",
        # its accounts team checks each invoice before it goes out: the demo's drafts
        billing_configuration={"document_locale": "nl", "invoice_grace_period": DRAFT_GRACE_DAYS},
    ),
    _customer(
        "nordlys",
        "Nordlys AS",
        "faktura@nordlys.test",
        "NO",
        "NOK",
        "Europe/Oslo",
        "nb",
        customer_type="company",
        city="Oslo",
        metadata=[{"key": "region", "value": "nordics", "display_in_invoice": False}],
    ),
    _customer(
        "fjallbacka",
        "Fjällbacka Design AB",
        "ekonomi@fjallbacka.test",
        "SE",
        "SEK",
        "Europe/Stockholm",
        "sv",
        customer_type="company",
        city="Göteborg",
        metadata=[{"key": "region", "value": "nordics", "display_in_invoice": False}],
    ),
    _customer(
        "rossi-logistica",
        "Rossi Logistica S.r.l.",
        "amministrazione@rossi.test",
        "IT",
        "EUR",
        "Europe/Rome",
        "it",
        customer_type="company",
        city="Milano",
    ),
    _customer(
        "sol-y-mar",
        "Sol y Mar Turismo S.L.",
        "facturas@solymar.test",
        "ES",
        "EUR",
        "Europe/Madrid",
        "es",
        customer_type="company",
        city="Valencia",
    ),
    _customer(
        "paulista-tech",
        "Paulista Tecnologia Ltda",
        "financeiro@paulista.test",
        "BR",
        "BRL",
        "America/Sao_Paulo",
        "pt-BR",
        customer_type="company",
        city="São Paulo",
        metadata=[{"key": "region", "value": "latam", "display_in_invoice": False}],
    ),
    _customer(
        "maple-analytics",
        "Maple Analytics Inc.",
        "billing@maple.test",
        "CA",
        "CAD",
        "America/Toronto",
        "en",
        customer_type="company",
        city="Toronto",
    ),
    _customer(
        "kiwi-labs",
        "Kiwi Labs Ltd",
        "accounts@kiwilabs.test",
        "NZ",
        "NZD",
        "Pacific/Auckland",
        "en",
        customer_type="company",
        city="Wellington",
    ),
    _customer(
        "sakura-robotics",
        "Sakura Robotics KK",
        "keiri@sakura.test",
        "JP",
        "JPY",
        "Asia/Tokyo",
        "en",
        customer_type="company",
        city="Tokyo",
    ),
    {
        "external_id": "jane-cooper",
        "firstname": "Jane",
        "lastname": "Cooper",
        "name": "Jane Cooper",
        "customer_type": "individual",
        "email": "jane.cooper@mail.test",
        "country": "IE",
        "currency": "EUR",
        "timezone": "Europe/Dublin",
        "metadata": [{"key": "referral", "value": "podcast-2026", "display_in_invoice": False}],
    },
    {
        "external_id": "lucas-martin",
        "firstname": "Lucas",
        "lastname": "Martin",
        "name": "Lucas Martin",
        "customer_type": "individual",
        "email": "lucas.martin@mail.test",
        "country": "BE",
        "currency": "EUR",
        "timezone": "Europe/Brussels",
        "billing_configuration": {"document_locale": "fr"},
    },
    {
        "external_id": "amelie-schmidt",
        "firstname": "Amélie",
        "lastname": "Schmidt",
        "name": "Amélie Schmidt",
        "customer_type": "individual",
        "email": "amelie@mail.test",
        "country": "CH",
        "currency": "CHF",
        "timezone": "Europe/Zurich",
        "billing_configuration": {"document_locale": "de"},
    },
    {
        # Created by a salesperson without an external id: Ledgerline generates one.
        "name": "Northwind Traders",
        "customer_type": "company",
        "email": "hello@northwind.test",
        "country": "AU",
        "currency": "AUD",
        "timezone": "Australia/Sydney",
        "metadata": [{"key": "lead_source", "value": "trade-show", "display_in_invoice": False}],
    },
]


def _demo_history(organization: Organization, admin: Agent) -> None:
    """A little support history, so timelines and the audit log are not empty at first sight."""
    by_admin = audit.Actor(type="agent", source="console", id=str(admin.lago_id), label=admin.email)
    acme = find_customer(organization, "acme-corp")
    if acme is not None:
        update_customer(
            organization,
            acme,
            {"external_id": "acme-corp", "email": "billing@acme.test, ap@acme.test",
             "net_payment_term": 45},
            by_admin,
        )  # fmt: skip
    churned, _created = upsert_customer(
        organization,
        {"external_id": "wayne-enterprises", "name": "Wayne Enterprises", "country": "US",
         "currency": "USD", "email": "lucius@wayne.test"},
        SEED,
    )  # fmt: skip
    delete_customer(organization, churned, by_admin)


@dataclass
class DemoSummary:
    organization_name: str
    customers_created: int
    customers_total: int
    #: the usage billing seeded by this run, or None when it was there already
    metering: MeteringSummary | None = None


def seed_demo() -> DemoSummary:
    """Create what is missing of the demo; never duplicates anything."""
    try:
        organization = find_organization(DEMO_ORG_NAME)
    except NotFound:
        organization = create_organization(DEMO_ORG_NAME, timezone="Europe/Paris")
        organization.default_currency = "EUR"
        organization.net_payment_term = 30
        organization.invoice_grace_period = 3
    if not db.session.scalar(
        select(ApiKey.id).where(ApiKey.key_hash == hash_api_key(DEMO_API_KEY))
    ):
        create_api_key(organization, SEED, raw_key=DEMO_API_KEY, name="Demo key (demo only)")
    admin = db.session.scalar(select(Agent).where(Agent.email == DEMO_ADMIN_EMAIL))
    if admin is None:
        admin = create_agent(
            organization, DEMO_ADMIN_EMAIL, "admin", DEMO_ADMIN_PASSWORD, SEED, name="Demo Admin"
        )
    for email, role in DEMO_AGENTS.items():
        if not db.session.scalar(select(Agent.id).where(Agent.email == email)):
            create_agent(organization, email, role, DEMO_ADMIN_PASSWORD, SEED)
    for name, query in DEMO_VIEWS.items():
        if not db.session.scalar(
            select(SavedView.id).where(SavedView.agent_id == admin.id, SavedView.name == name)
        ):
            db.session.add(
                SavedView(
                    organization_id=organization.id, agent_id=admin.id, name=name, query=query
                )
            )

    created = 0
    for payload in DEMO_CUSTOMERS:
        external_id = payload.get("external_id")
        if external_id is None:
            # The generated-id customer is recognised by name on later runs.
            exists = db.session.scalar(
                select(Customer.id).where(
                    Customer.organization_id == organization.id,
                    Customer.name == payload["name"],
                    Customer.deleted_at.is_(None),
                )
            )
            if exists:
                continue
        elif find_customer(organization, external_id) is not None:
            continue
        upsert_customer(organization, payload, SEED, generate_missing_external_id=True)
        created += 1
    if created:
        _demo_history(organization, admin)
    seed_taxes(organization)  # before the usage billing: its invoices show the taxes
    total = db.session.scalar(
        select(func.count(Customer.id)).where(
            Customer.organization_id == organization.id, Customer.deleted_at.is_(None)
        )
    )
    metering = seed_metering(organization)
    seed_offset(organization)
    seed_add_ons(organization)
    seed_payments(organization)  # after the one-off invoice, which Stripe pays
    seed_webhooks(organization)
    seed_mail(organization)
    return DemoSummary(organization.name, created, total or 0, metering)
