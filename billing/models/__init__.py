"""SQLAlchemy models, one module per aggregate. Importing this package registers them all."""

from billing.models.audit import ActivityLog
from billing.models.console import CustomerImport, LoginThrottle, SavedView
from billing.models.customers import Customer, CustomerMetadata, CustomerStatus, IntegrationCustomer
from billing.models.organizations import Agent, AgentRole, ApiKey, Organization
from billing.models.outbox import OutboxEvent

__all__ = [
    "ActivityLog",
    "Agent",
    "AgentRole",
    "ApiKey",
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
