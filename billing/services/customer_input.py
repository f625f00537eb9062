"""Validation of customer input (Lago's `{"customer": {...}}` payload) into column changes.

The parser never touches the database: it turns a payload into the changes to apply and a map
of field errors with Lago's codes, so that a refused upsert writes nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from email_validator import EmailNotValidError, validate_email

from billing.errors import InvariantBroken
from billing.reference import DOCUMENT_LOCALES, country_codes, currency_codes, timezones

# Ledgerline's limits (lago-api.md deviations: Lago allows 5 items, keys of 20, values of 100).
METADATA_MAX_ITEMS = 50
METADATA_KEY_MAX = 40
METADATA_VALUE_MAX = 255
#: days; a sanity bound for grace periods and payment terms
MAX_DAYS = 3650

#: free-text fields and their maximum length
TEXT_FIELDS: dict[str, int] = {
    "name": 255,
    "firstname": 255,
    "lastname": 255,
    "phone": 255,
    "url": 1024,
    "logo_url": 1024,
    "legal_name": 255,
    "legal_number": 255,
    "tax_identification_number": 255,
    "address_line1": 255,
    "address_line2": 255,
    "city": 255,
    "state": 255,
    "zipcode": 255,
    "external_salesforce_id": 255,
}
SHIPPING_FIELDS: dict[str, str] = {
    "address_line1": "shipping_address_line1",
    "address_line2": "shipping_address_line2",
    "city": "shipping_city",
    "state": "shipping_state",
    "zipcode": "shipping_zipcode",
}
CUSTOMER_TYPES = ("company", "individual")
ACCOUNT_TYPES = ("customer", "partner")
FINALIZE_ZERO_AMOUNT_INVOICE = ("inherit", "skip", "finalize")
PAYMENT_PROVIDERS = ("stripe", "gocardless", "adyen", "cashfree", "moneyhash", "flutterwave")
ISSUING_DATE_ANCHORS = ("current_period_end", "next_period_start")
ISSUING_DATE_ADJUSTMENTS = ("keep_anchor", "align_with_finalization_date")
INTEGRATION_TYPES = ("netsuite", "anrok", "xero", "hubspot", "salesforce", "avalara")

# External ids travel unencoded in URL paths (the official SDK does not escape them), so the
# characters that would change the path or query are refused up front.
_UNSAFE_EXTERNAL_ID = re.compile(r"[/?#%\\\x00-\x1f\x7f]")

_MISSING = object()


@dataclass
class MetadataInput:
    key: str
    value: str
    display_in_invoice: bool
    lago_id: str | None = None


@dataclass
class IntegrationInput:
    integration_type: str
    values: dict[str, Any]
    lago_id: str | None = None


@dataclass
class CustomerInput:
    """What a payload asks to change; absent keys are not in `columns`."""

    external_id: str | None = None
    columns: dict[str, Any] = field(default_factory=dict)
    metadata: list[MetadataInput] | None = None
    integrations: list[IntegrationInput] | None = None
    #: codes of the customer's taxes (replacing them); None when absent
    tax_codes: list[str] | None = None
    errors: dict[str, list[str]] = field(default_factory=dict)

    def error(self, key: str, code: str) -> None:
        codes = self.errors.setdefault(key, [])
        if code not in codes:
            codes.append(code)


def parse_customer_input(
    payload: dict[str, Any], *, require_external_id: bool = True
) -> CustomerInput:
    """Validate a customer payload; the result carries changes or errors, never both used."""
    result = CustomerInput()
    _parse_external_id(payload, result, require_external_id)
    for name, max_length in TEXT_FIELDS.items():
        _parse_text(payload, name, name, max_length, result)
    _parse_email(payload, result)
    _parse_choice(payload, "customer_type", CUSTOMER_TYPES, "value_is_invalid", result)
    _parse_choice(
        payload, "account_type", ACCOUNT_TYPES, "value_is_invalid", result, nullable=False
    )
    _parse_code(payload, "country", "country", country_codes(), "not_a_valid_country_code", result)
    _parse_code(payload, "currency", "currency", currency_codes(), "value_is_invalid", result)
    _parse_timezone(payload, result)
    _parse_days(payload, "net_payment_term", "net_payment_term", result)
    if "finalize_zero_amount_invoice" in payload:
        value = payload["finalize_zero_amount_invoice"]
        if value in (None, ""):
            result.columns["finalize_zero_amount_invoice"] = "inherit"
        elif value in FINALIZE_ZERO_AMOUNT_INVOICE:
            result.columns["finalize_zero_amount_invoice"] = value
        else:
            result.error("finalize_zero_amount_invoice", "invalid_value")
    _parse_bool(payload, "skip_invoice_custom_sections", "skip_invoice_custom_sections", result)
    _parse_billing_configuration(payload, result)
    _parse_shipping_address(payload, result)
    _parse_metadata(payload, result)
    _parse_integrations(payload, result)
    for name in ("tax_codes", "invoice_custom_section_codes"):
        value = payload.get(name)
        if value is not None and not (
            isinstance(value, list) and all(isinstance(v, str) for v in value)
        ):
            result.error(name, "value_is_invalid")
        elif name == "tax_codes" and name in payload:
            # The codes are checked against the organization's taxes when applied.
            result.tax_codes = list(value or [])
    # invoice_custom_section_codes is accepted for compatibility (no custom sections yet).
    if payload.get("billing_entity_code") is not None and not isinstance(
        payload["billing_entity_code"], str
    ):
        result.error("billing_entity_code", "value_is_invalid")
    return result


def _as_text(value: Any) -> str | None | object:
    """A string, None for null or blank, or _MISSING for a value that is not text at all."""
    if value is None:
        return None
    if isinstance(value, (bool, dict, list)):
        return _MISSING
    if isinstance(value, (int, float)):
        value = str(value)
    if not isinstance(value, str):
        return _MISSING
    return value if value.strip() else None


def _parse_external_id(payload: dict[str, Any], result: CustomerInput, required: bool) -> None:
    value = _as_text(payload.get("external_id"))
    if value is _MISSING:
        result.error("external_id", "value_is_invalid")
    elif value is None:
        if required:
            result.error("external_id", "value_is_mandatory")
    else:
        if not isinstance(value, str):
            raise InvariantBroken("expected isinstance(value, str)")
        value = value.strip()
        if len(value) > 255:
            result.error("external_id", "value_is_too_long")
        elif _UNSAFE_EXTERNAL_ID.search(value):
            result.error("external_id", "value_is_invalid")
        else:
            result.external_id = value


def _parse_text(
    payload: dict[str, Any],
    key: str,
    column: str,
    max_length: int,
    result: CustomerInput,
    *,
    error_key: str | None = None,
) -> None:
    if key not in payload:
        return
    value = _as_text(payload[key])
    if value is _MISSING:
        result.error(error_key or key, "value_is_invalid")
    elif isinstance(value, str) and len(value) > max_length:
        result.error(error_key or key, "value_is_too_long")
    else:
        result.columns[column] = value


def _parse_email(payload: dict[str, Any], result: CustomerInput) -> None:
    if "email" not in payload:
        return
    value = _as_text(payload["email"])
    if value is _MISSING:
        result.error("email", "invalid_email_format")
        return
    if value is None:
        result.columns["email"] = None
        return
    if not isinstance(value, str):
        raise InvariantBroken("expected isinstance(value, str)")
    if len(value) > 1024:
        result.error("email", "value_is_too_long")
        return
    addresses = [a.strip() for a in value.split(",")]
    for address in addresses:
        try:
            # test_environment allows the reserved `.test` domain used in examples and demos
            # and turns off DNS look-ups; the address syntax is still checked in full.
            validate_email(address, check_deliverability=False, test_environment=True)
        except EmailNotValidError:
            result.error("email", "invalid_email_format")
            return
    # Stored as sent (Lago does the same), so a client comparing its value with ours agrees.
    result.columns["email"] = value.strip()


def _parse_choice(
    payload: dict[str, Any],
    key: str,
    choices: tuple[str, ...],
    code: str,
    result: CustomerInput,
    *,
    column: str | None = None,
    nullable: bool = True,
) -> None:
    if key not in payload:
        return
    value = payload[key]
    if value in (None, "") and nullable:
        result.columns[column or key] = None
    elif isinstance(value, str) and value in choices:
        result.columns[column or key] = value
    else:
        result.error(key, code)


def _parse_code(
    payload: dict[str, Any],
    key: str,
    column: str,
    valid: frozenset[str],
    code: str,
    result: CustomerInput,
    *,
    error_key: str | None = None,
) -> None:
    if key not in payload:
        return
    value = payload[key]
    if value in (None, ""):
        result.columns[column] = None
    elif isinstance(value, str) and value.strip().upper() in valid:
        result.columns[column] = value.strip().upper()
    else:
        result.error(error_key or key, code)


def _parse_timezone(payload: dict[str, Any], result: CustomerInput) -> None:
    if "timezone" not in payload:
        return
    value = payload["timezone"]
    if value in (None, ""):
        result.columns["timezone"] = None
    elif isinstance(value, str) and value in timezones():
        result.columns["timezone"] = value
    else:
        result.error("timezone", "invalid_timezone")


def _parse_days(payload: dict[str, Any], key: str, column: str, result: CustomerInput) -> None:
    if key not in payload:
        return
    value = payload[key]
    if value is None:
        result.columns[column] = None
        return
    if isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()):
        value = int(value)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        result.error(key, "value_is_invalid")
    elif not 0 <= value <= MAX_DAYS:
        result.error(key, "value_is_out_of_range")
    else:
        result.columns[column] = value


def _as_bool(value: Any) -> bool | None | object:
    if value is None or isinstance(value, bool):
        return value
    if value in ("true", "1", 1):
        return True
    if value in ("false", "0", 0):
        return False
    return _MISSING


def _parse_bool(
    payload: dict[str, Any], key: str, column: str, result: CustomerInput, *, nullable: bool = False
) -> None:
    if key not in payload:
        return
    value = _as_bool(payload[key])
    if value is _MISSING or (value is None and not nullable):
        result.error(key, "value_is_invalid")
    else:
        result.columns[column] = value


def _parse_billing_configuration(payload: dict[str, Any], result: CustomerInput) -> None:
    config = payload.get("billing_configuration")
    if config is None:
        return
    if not isinstance(config, dict):
        result.error("billing_configuration", "value_is_invalid")
        return
    _parse_days(config, "invoice_grace_period", "invoice_grace_period", result)
    if "document_locale" in config:
        locale = config["document_locale"]
        if locale in (None, ""):
            result.columns["document_locale"] = None
        elif isinstance(locale, str) and locale in DOCUMENT_LOCALES:
            result.columns["document_locale"] = locale
        else:
            result.error("document_locale", "not_a_valid_language_code")
    _parse_choice(config, "payment_provider", PAYMENT_PROVIDERS, "value_is_invalid", result)
    _parse_text(config, "payment_provider_code", "payment_provider_code", 255, result)
    _parse_text(config, "provider_customer_id", "provider_customer_id", 255, result)
    _parse_choice(
        config,
        "subscription_invoice_issuing_date_anchor",
        ISSUING_DATE_ANCHORS,
        "value_is_invalid",
        result,
    )
    _parse_choice(
        config,
        "subscription_invoice_issuing_date_adjustment",
        ISSUING_DATE_ADJUSTMENTS,
        "value_is_invalid",
        result,
    )
    _parse_bool(config, "sync", "sync", result, nullable=True)
    _parse_bool(config, "sync_with_provider", "sync_with_provider", result, nullable=True)
    if "provider_payment_methods" in config:
        methods = config["provider_payment_methods"]
        if methods is None or (
            isinstance(methods, list) and all(isinstance(m, str) for m in methods)
        ):
            result.columns["provider_payment_methods"] = methods
        else:
            result.error("provider_payment_methods", "value_is_invalid")


def _parse_shipping_address(payload: dict[str, Any], result: CustomerInput) -> None:
    address = payload.get("shipping_address")
    if address is None:
        return
    if not isinstance(address, dict):
        result.error("shipping_address", "value_is_invalid")
        return
    for key, column in SHIPPING_FIELDS.items():
        _parse_text(address, key, column, 255, result, error_key=column)
    _parse_code(
        address,
        "country",
        "shipping_country",
        country_codes(),
        "not_a_valid_country_code",
        result,
        error_key="shipping_country",
    )


def _parse_metadata(payload: dict[str, Any], result: CustomerInput) -> None:
    if "metadata" not in payload:
        return
    items = payload["metadata"]
    if items is None:
        items = []
    if not isinstance(items, list):
        result.error("metadata", "value_is_invalid")
        return
    if len(items) > METADATA_MAX_ITEMS:
        result.error("metadata", "invalid_count")
        return
    parsed: list[MetadataInput] = []
    keys: set[str] = set()
    for item in items:
        if not isinstance(item, dict):
            result.error("metadata", "value_is_invalid")
            continue
        key, value = _as_text(item.get("key")), _as_text(item.get("value"))
        display = _as_bool(item.get("display_in_invoice", False))
        lago_id = item.get("id")
        if key is _MISSING or value is _MISSING or display is _MISSING:
            result.error("metadata", "value_is_invalid")
        elif key is None or value is None:
            result.error("metadata", "value_is_mandatory")
        elif len(key) > METADATA_KEY_MAX or len(value) > METADATA_VALUE_MAX:  # type: ignore[arg-type]
            result.error("metadata", "value_is_too_long")
        elif key in keys:
            result.error("metadata", "value_already_exist")
        elif lago_id is not None and not isinstance(lago_id, str):
            result.error("metadata", "value_is_invalid")
        else:
            if not (isinstance(key, str) and isinstance(value, str)):
                raise InvariantBroken("expected isinstance(key, str) and isinstance(value, str)")
            keys.add(key)
            parsed.append(MetadataInput(key, value, bool(display), lago_id))
    result.metadata = parsed


def _parse_integrations(payload: dict[str, Any], result: CustomerInput) -> None:
    items = payload.get("integration_customers")
    if items is None:
        return
    if not isinstance(items, list):
        result.error("integration_customers", "value_is_invalid")
        return
    parsed: list[IntegrationInput] = []
    types: set[str] = set()
    for item in items:
        kind = item.get("integration_type") if isinstance(item, dict) else None
        if kind not in INTEGRATION_TYPES or kind in types:
            result.error("integration_customers", "value_is_invalid")
            continue
        if not (isinstance(item, dict) and isinstance(kind, str)):
            raise InvariantBroken("expected isinstance(item, dict) and isinstance(kind, str)")
        values: dict[str, Any] = {}
        for key in ("integration_code", "external_customer_id", "subsidiary_id"):
            if key in item:
                text_value = _as_text(item[key])
                if text_value is _MISSING or (
                    isinstance(text_value, str) and len(text_value) > 255
                ):
                    result.error("integration_customers", "value_is_invalid")
                else:
                    values[key] = text_value
        if "sync_with_provider" in item:
            sync = _as_bool(item["sync_with_provider"])
            if sync is _MISSING:
                result.error("integration_customers", "value_is_invalid")
            else:
                values["sync_with_provider"] = bool(sync)
        types.add(kind)
        lago_id = item.get("id")
        parsed.append(IntegrationInput(kind, values, lago_id if isinstance(lago_id, str) else None))
    result.integrations = parsed
