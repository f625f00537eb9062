"""Domain objects as Lago's v1 API shows them (the API and the outbox share these)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from billing.models import Customer, CustomerMetadata, IntegrationCustomer
from billing.serializers_taxes import serialize_tax
from billing.timeutil import iso_utc

if TYPE_CHECKING:
    from sqlalchemy import Row

    from billing.services.customers import ListedCustomer


def serialize_metadata(item: CustomerMetadata | Row[Any]) -> dict[str, Any]:
    return {
        "lago_id": str(item.lago_id),
        "key": item.key,
        "value": item.value,
        "display_in_invoice": item.display_in_invoice,
        "created_at": iso_utc(item.created_at),
    }


def serialize_integration_customer(item: IntegrationCustomer | Row[Any]) -> dict[str, Any]:
    return {
        "lago_id": str(item.lago_id),
        "type": item.integration_type,
        "integration_code": item.integration_code,
        "external_customer_id": item.external_customer_id,
        "sync_with_provider": item.sync_with_provider,
        "subsidiary_id": item.subsidiary_id,
    }


def serialize_billing_configuration(customer: Customer | ListedCustomer) -> dict[str, Any]:
    config: dict[str, Any] = {
        "invoice_grace_period": customer.invoice_grace_period,
        "payment_provider": customer.payment_provider,
        "payment_provider_code": customer.payment_provider_code,
        "document_locale": customer.document_locale,
        "subscription_invoice_issuing_date_anchor": (
            customer.subscription_invoice_issuing_date_anchor
        ),
        "subscription_invoice_issuing_date_adjustment": (
            customer.subscription_invoice_issuing_date_adjustment
        ),
    }
    if customer.payment_provider:
        config.update(
            provider_customer_id=customer.provider_customer_id,
            provider_payment_methods=customer.provider_payment_methods,
            sync=customer.sync,
            sync_with_provider=customer.sync_with_provider,
        )
    return config


def serialize_shipping_address(customer: Customer | ListedCustomer) -> dict[str, Any]:
    return {
        "address_line1": customer.shipping_address_line1,
        "address_line2": customer.shipping_address_line2,
        "city": customer.shipping_city,
        "zipcode": customer.shipping_zipcode,
        "state": customer.shipping_state,
        "country": customer.shipping_country,
    }


def serialize_customer(customer: Customer | ListedCustomer) -> dict[str, Any]:
    """Lago's customer object (lago-api.md §4): every key, null when empty. The same for a
    loaded customer and a listed one."""
    return {
        "lago_id": str(customer.lago_id),
        "external_id": customer.external_id,
        "sequential_id": customer.sequential_id,
        "slug": customer.slug,
        "billing_entity_code": None,
        "account_type": customer.account_type,
        "name": customer.name,
        "firstname": customer.firstname,
        "lastname": customer.lastname,
        "customer_type": customer.customer_type,
        "email": customer.email,
        "phone": customer.phone,
        "url": customer.url,
        "logo_url": customer.logo_url,
        "legal_name": customer.legal_name,
        "legal_number": customer.legal_number,
        "tax_identification_number": customer.tax_identification_number,
        "address_line1": customer.address_line1,
        "address_line2": customer.address_line2,
        "city": customer.city,
        "state": customer.state,
        "zipcode": customer.zipcode,
        "country": customer.country,
        "currency": customer.currency,
        "timezone": customer.timezone,
        "applicable_timezone": customer.applicable_timezone,
        "net_payment_term": customer.net_payment_term,
        "external_salesforce_id": customer.external_salesforce_id,
        "finalize_zero_amount_invoice": customer.finalize_zero_amount_invoice,
        "skip_invoice_custom_sections": customer.skip_invoice_custom_sections,
        "status": customer.status.value,
        "created_at": iso_utc(customer.created_at),
        "updated_at": iso_utc(customer.updated_at),
        "deleted_at": iso_utc(customer.deleted_at),
        "billing_configuration": serialize_billing_configuration(customer),
        "shipping_address": serialize_shipping_address(customer),
        "metadata": [serialize_metadata(m) for m in customer.metadata_items],
        "integration_customers": [
            serialize_integration_customer(i) for i in customer.integration_customers
        ],
        "taxes": [serialize_tax(tax) for tax in customer.taxes],
        "applicable_invoice_custom_sections": [],
        "error_details": [],
    }
