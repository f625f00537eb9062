"""SQLAlchemy models, one module per aggregate. Importing this package registers them all."""

from billing.models.add_ons import AddOn
from billing.models.audit import ActivityLog
from billing.models.console import CustomerImport, LoginThrottle, SavedView
from billing.models.coupons import (
    AppliedCoupon,
    Coupon,
    CouponExpiration,
    CouponFrequency,
    CouponStatus,
    CouponTarget,
    CouponType,
    InvoiceCoupon,
)
from billing.models.credit_notes import (
    CreditNote,
    CreditNoteItem,
    CreditNoteReason,
    CreditStatus,
    InvoiceCredit,
    RefundStatus,
)
from billing.models.customers import Customer, CustomerMetadata, CustomerStatus, IntegrationCustomer
from billing.models.documents import Document, DocumentType
from billing.models.events import Event, EventError, UsageBucket
from billing.models.installation import InstallationSecret
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
from billing.models.mail import Email, EmailKind, EmailStatus
from billing.models.organizations import Agent, AgentRole, ApiKey, Organization
from billing.models.outbox import OutboxEvent
from billing.models.payments import (
    PAYMENT_METHODS,
    Payment,
    PaymentRecordStatus,
    PaymentType,
    ProviderEvent,
    ProviderEventOutcome,
)
from billing.models.plans import BillableMetric, Charge, ChargeFilter, Plan, PlanInterval
from billing.models.rate_limits import RateLimitCounter
from billing.models.subscriptions import BillingTime, Subscription, SubscriptionStatus
from billing.models.taxes import FeeAppliedTax, InvoiceAppliedTax, Tax
from billing.models.wallets import (
    TransactionKind,
    TransactionStatus,
    TransactionType,
    Wallet,
    WalletStatus,
    WalletTransaction,
)
from billing.models.webhooks import (
    DeliveryStatus,
    InboundDelivery,
    SignatureAlgo,
    WebhookDelivery,
    WebhookEndpoint,
)

__all__ = [
    "InstallationSecret",
    "PAYMENT_METHODS",
    "Payment",
    "PaymentRecordStatus",
    "PaymentType",
    "ProviderEvent",
    "ProviderEventOutcome",
    "Email",
    "EmailKind",
    "EmailStatus",
    "DeliveryStatus",
    "InboundDelivery",
    "SignatureAlgo",
    "WebhookDelivery",
    "WebhookEndpoint",
    "ActivityLog",
    "AddOn",
    "Agent",
    "AgentRole",
    "ApiKey",
    "AppliedCoupon",
    "Coupon",
    "CouponExpiration",
    "CouponFrequency",
    "CouponStatus",
    "CouponTarget",
    "CouponType",
    "InvoiceCoupon",
    "BillableMetric",
    "BillingTime",
    "Charge",
    "ChargeFilter",
    "Document",
    "DocumentType",
    "CreditNote",
    "CreditNoteItem",
    "CreditNoteReason",
    "CreditStatus",
    "Event",
    "EventError",
    "Fee",
    "FeeAppliedTax",
    "FeeType",
    "Invoice",
    "InvoiceAppliedTax",
    "InvoiceCredit",
    "InvoiceMetadata",
    "InvoiceStatus",
    "InvoiceSubscription",
    "InvoicingReason",
    "PaymentStatus",
    "RefundStatus",
    "Plan",
    "PlanInterval",
    "Subscription",
    "SubscriptionStatus",
    "Tax",
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
    "RateLimitCounter",
    "SavedView",
]
