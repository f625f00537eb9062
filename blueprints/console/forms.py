"""Console forms. Field names match the service's error keys, so errors land next to fields."""

from __future__ import annotations

from functools import cache

from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import (
    BooleanField,
    IntegerField,
    SelectChoice,
    SelectField,
    SelectMultipleField,
    StringField,
)
from wtforms.validators import DataRequired, Length, NumberRange, Optional

from billing.models import Organization
from billing.reference import (
    DOCUMENT_LOCALES,
    country_codes,
    country_name,
    currency_codes,
    timezones,
)
from billing.services.taxes import all_taxes

LOCALE_NAMES = {
    "en": "English", "fr": "Français", "de": "Deutsch", "es": "Español", "it": "Italiano",
    "nl": "Nederlands", "nb": "Norsk bokmål", "sv": "Svenska", "pt-BR": "Português (Brasil)",
}  # fmt: skip


@cache
def country_choices(blank: str = "—") -> tuple[tuple[str, str], ...]:
    return (("", blank),) + tuple(
        sorted(
            ((code, f"{country_name(code)} ({code})") for code in country_codes()),
            key=lambda choice: choice[1],
        )
    )


def currency_choices(blank: str = "—") -> list[tuple[str, str]]:
    return [("", blank)] + [(code, code) for code in sorted(currency_codes())]


def timezone_choices(blank: str = "—") -> list[tuple[str, str]]:
    return [("", blank)] + [(zone, zone) for zone in sorted(timezones())]


def locale_choices(blank: str = "—") -> list[tuple[str, str]]:
    return [("", blank)] + [(code, f"{LOCALE_NAMES[code]} ({code})") for code in DOCUMENT_LOCALES]


def tax_choices(organization: Organization) -> list[tuple[str, str]]:
    """The organization's taxes for a `tax_codes` picker: code → "VAT FR (vat_fr, 20 %)"."""
    return [
        (tax.code, f"{tax.name} ({tax.code}, {format(tax.rate.normalize(), 'f')} %)")
        for tax in all_taxes(organization)
    ]


class TaxCodes(SelectMultipleField):
    """A `tax_codes` picker; its choices are the organization's taxes, set per request, and
    the service checks the codes (Lago's `tax_not_found`)."""

    def __init__(self, label: str = "Taxes", **kwargs: object) -> None:
        super().__init__(label, choices=[], validate_choice=False, **kwargs)  # type: ignore[arg-type]


class Select(SelectField):
    """A select whose value the service validates (with the API's rules and messages)."""

    def __init__(self, label: str, choices: list[tuple[str, str]], **kwargs: object) -> None:
        options = [SelectChoice(value, text) for value, text in choices]
        super().__init__(label, choices=options, validate_choice=False, **kwargs)  # type: ignore[arg-type]


class CustomerForm(FlaskForm):
    """Every customer field, grouped in the template. Metadata rows come as metadata-N-*."""

    # identity
    external_id = StringField("External id", validators=[Length(max=255)])
    name = StringField("Name", validators=[Length(max=255)])
    firstname = StringField("First name", validators=[Length(max=255)])
    lastname = StringField("Last name", validators=[Length(max=255)])
    customer_type = Select(
        "Type", choices=[("", "—"), ("company", "Company"), ("individual", "Individual")]
    )
    legal_name = StringField("Legal name", validators=[Length(max=255)])
    legal_number = StringField("Legal number", validators=[Length(max=255)])
    tax_identification_number = StringField("Tax id", validators=[Length(max=255)])
    external_salesforce_id = StringField("Salesforce id", validators=[Length(max=255)])
    # contact
    email = StringField("E-mail", validators=[Length(max=1024)])
    phone = StringField("Phone", validators=[Length(max=255)])
    url = StringField("Website", validators=[Length(max=1024)])
    # billing
    currency = Select("Currency", currency_choices())
    net_payment_term = IntegerField(
        "Net payment term (days)", validators=[Optional(), NumberRange(0, 3650)]
    )
    invoice_grace_period = IntegerField(
        "Invoice grace period (days)", validators=[Optional(), NumberRange(0, 3650)]
    )
    tax_codes = TaxCodes()
    # address and shipping
    address_line1 = StringField("Address line 1", validators=[Length(max=255)])
    address_line2 = StringField("Address line 2", validators=[Length(max=255)])
    city = StringField("City", validators=[Length(max=255)])
    zipcode = StringField("Postal code", validators=[Length(max=255)])
    state = StringField("State / region", validators=[Length(max=255)])
    country = Select("Country", country_choices())
    shipping_address_line1 = StringField("Address line 1", validators=[Length(max=255)])
    shipping_address_line2 = StringField("Address line 2", validators=[Length(max=255)])
    shipping_city = StringField("City", validators=[Length(max=255)])
    shipping_zipcode = StringField("Postal code", validators=[Length(max=255)])
    shipping_state = StringField("State / region", validators=[Length(max=255)])
    shipping_country = Select("Country", country_choices())
    # localisation
    timezone = Select("Time zone", timezone_choices("Organization's time zone"))
    document_locale = Select("Document language", locale_choices("Organization's language"))

    IDENTITY = ("external_id", "name", "firstname", "lastname", "customer_type", "legal_name",
                "legal_number", "tax_identification_number", "external_salesforce_id")  # fmt: skip
    CONTACT = ("email", "phone", "url")
    BILLING = ("currency", "net_payment_term", "invoice_grace_period")
    ADDRESS = ("address_line1", "address_line2", "city", "zipcode", "state", "country")
    SHIPPING = ("shipping_address_line1", "shipping_address_line2", "shipping_city",
                "shipping_zipcode", "shipping_state", "shipping_country")  # fmt: skip
    LOCALISATION = ("timezone", "document_locale")


class SavedViewForm(FlaskForm):
    name = StringField("View name", validators=[DataRequired(), Length(max=80)])
    query = StringField(validators=[Length(max=2000)])


class ConfirmDeleteForm(FlaskForm):
    confirm = BooleanField(
        "I understand that this customer will be deleted", validators=[DataRequired()]
    )


class ImportForm(FlaskForm):
    file = FileField("CSV file", validators=[FileRequired()])
