"""SQLAlchemy models, one module per aggregate. Importing this package registers them all."""

from billing.models.audit import ActivityLog
from billing.models.console import CustomerImport, LoginThrottle, SavedView
from billing.models.customers import Customer, CustomerMetadata, CustomerStatus, IntegrationCustomer
from billing.models.events import Event, EventError, UsageBucket
from billing.models.invoices import (
    Fee,
    FeeType,
    Invoice,
    InvoiceMetadata,
    InvoiceStatus,
    InvoiceSubscription,
    InvoicingReason,
    PaymentStatus,
)
from billing.models.organizations import Agent, AgentRole, ApiKey, Organization
from billing.models.outbox import OutboxEvent
from billing.models.plans import BillableMetric, Charge, ChargeFilter, Plan, PlanInterval
from billing.models.subscriptions import BillingTime, Subscription, SubscriptionStatus
from billing.models.wallets import (
    TransactionKind,
    TransactionStatus,
    TransactionType,
    Wallet,
    WalletStatus,
    WalletTransaction,
)

__all__ = [
    "ActivityLog",
    "Agent",
    "AgentRole",
    "ApiKey",
    "BillableMetric",
    "BillingTime",
    "Charge",
    "ChargeFilter",
    "Event",
    "EventError",
    "Fee",
    "FeeType",
    "Invoice",
    "InvoiceMetadata",
    "InvoiceStatus",
    "InvoiceSubscription",
    "InvoicingReason",
    "PaymentStatus",
    "Plan",
    "PlanInterval",
    "Subscription",
    "SubscriptionStatus",
    "TransactionKind",
    "TransactionStatus",
    "TransactionType",
    "UsageBucket",
    "Wallet",
    "WalletStatus",
    "WalletTransaction",
    "Customer",
    "CustomerImport",
    "CustomerMetadata",
    "CustomerStatus",
    "IntegrationCustomer",
    "LoginThrottle",
    "Organization",
    "OutboxEvent",
    "SavedView",
]
