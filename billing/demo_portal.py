"""The demo's customer portal: a working link for the demo customer with the most invoices.

`flask serve` prints it at start-up, signed with the key the web server verifies links with
(SECRET_KEY, or the installation secret stored in the database).
"""

from __future__ import annotations

from sqlalchemy import func, select

from billing.demo import DEMO_ORG_NAME
from billing.models import Customer, Invoice, Organization
from billing.services import portal
from extensions import db


def demo_portal_url(base_url: str, secret_key: str) -> str | None:
    """A 12-hour portal link of the demo customer with the most invoices (None: no demo)."""
    customer = db.session.scalar(
        select(Customer)
        .join(Organization, Organization.id == Customer.organization_id)
        .outerjoin(Invoice, Invoice.customer_id == Customer.id)
        .where(Organization.name == DEMO_ORG_NAME, Customer.deleted_at.is_(None))
        .group_by(Customer.id)
        .order_by(func.count(Invoice.id).desc(), Customer.id)
        .limit(1)
    )
    if customer is None:
        return None
    return portal.portal_url(base_url, secret_key, customer)


def demo_portal_banner(base_url: str, secret_key: str) -> str:
    """The start-up line naming the demo portal link (empty without demo data)."""
    url = demo_portal_url(base_url, secret_key)
    db.session.remove()
    if url is None:
        return ""
    return f"\n  Customer portal (demo, valid 12 hours): {url}\n"
