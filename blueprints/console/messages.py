"""Human messages for the service's error codes, shown next to form fields."""

from __future__ import annotations

MESSAGES = {
    "value_is_mandatory": "This field is required.",
    "value_is_invalid": "This value is not valid.",
    "value_is_too_long": "This is too long.",
    "value_is_out_of_range": "Enter a number of days between 0 and 3650.",
    "invalid_email_format": "Enter valid e-mail addresses, separated by commas.",
    "invalid_timezone": "Choose a time zone from the list.",
    "not_a_valid_country_code": "Choose a country from the list.",
    "not_a_valid_language_code": "Choose a language from the list.",
    "invalid_value": "This value is not valid.",
    "value_already_exist": "This value is already used.",
    "value_is_immutable": "This cannot change once billing has started for the customer.",
}

FIELD_MESSAGES = {
    ("external_id", "value_already_exist"): "Another customer already uses this external id.",
    (
        "external_id",
        "value_is_invalid",
    ): "An external id cannot contain / ? # % or spaces at the ends.",
    ("metadata", "value_already_exist"): "Each metadata key can appear only once.",
    ("metadata", "value_is_mandatory"): "Every metadata row needs a key and a value.",
    ("metadata", "value_is_too_long"): "Metadata keys are limited to 40 characters, values to 255.",
    ("metadata", "invalid_count"): "A customer can have at most 50 metadata items.",
    ("currency", "value_is_immutable"): (
        "The currency is locked: subscriptions, invoices or wallets already use it."
    ),
    ("external_id", "value_is_immutable"): (
        "The external id is locked: billing objects already refer to it."
    ),
}


def field_message(field: str, code: str) -> str:
    return FIELD_MESSAGES.get((field, code)) or MESSAGES.get(code) or code.replace("_", " ")
