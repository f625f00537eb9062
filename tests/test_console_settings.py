"""Settings in the console, as an admin uses them: profile and defaults, API keys, agents."""

from __future__ import annotations

import io
import re

import pytest
from sqlalchemy import select
from werkzeug.datastructures import FileStorage, MultiDict
from werkzeug.test import encode_multipart

from billing.errors import ValidationFailed
from billing.models import ActivityLog, Agent, ApiKey
from billing.services import settings as settings_service
from tests import factories

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
SVG = b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'


def settings_form(org, **overrides):
    """The settings form as the page submits it, with the organization's current values."""
    data = {
        "name": org.name,
        "timezone": org.timezone,
        "default_currency": org.default_currency or "",
        "document_locale": org.document_locale,
        "invoice_grace_period": str(org.invoice_grace_period),
        "net_payment_term": str(org.net_payment_term),
        "portal_embed_origins": "\n".join(org.portal_embed_origins or []),
        "brand_color": org.brand_color,
        "finalize_zero_amount_invoice": "finalize" if org.finalize_zero_amount_invoice else "skip",
    }
    data.update(overrides)
    return data


def field_html(response, name):
    """The field's block on the page: label, input, hint and the errors next to it."""
    match = re.search(
        rf'<div class="field[^"]*" id="field-{name}">(.*?)</div>', response.text, re.S
    )
    assert match, f"no field {name}"
    return match.group(1)


def post_multipart(client, url, data, **kwargs):
    """A form post with files, encoded here: Werkzeug's test client leaves the temporary file
    of a body over 500 KB open (the CSRF token travels in the header, as htmx sends it)."""
    fields = MultiDict()
    for name, value in data.items():
        if isinstance(value, tuple):
            value = FileStorage(io.BytesIO(value[0]), filename=value[1])
        fields.add(name, value)
    boundary, body = encode_multipart(fields)
    return client.post(
        url, data=body, content_type=f"multipart/form-data; boundary={boundary}", **kwargs
    )


def scalars(query):
    """Every row the query finds in the test's database session."""
    from extensions import db

    return list(db.session.scalars(query))


def entries(org, activity_type):
    return scalars(
        select(ActivityLog)
        .where(ActivityLog.organization_id == org.id, ActivityLog.activity_type == activity_type)
        .order_by(ActivityLog.id)
    )


# --- organization profile and billing defaults -----------------------------------------------


def test_the_page_shows_the_current_settings(agent_client, org):
    org.portal_embed_origins = ["https://app.example.com", "http://localhost:3000"]

    response = agent_client.get("/settings")

    assert response.status_code == 200
    assert f'value="{org.name}"' in response.text
    assert '<option selected value="UTC">' in response.text
    assert "https://app.example.com\nhttp://localhost:3000</textarea>" in response.text


def test_saving_changes_every_setting_and_records_the_diff(agent_client, org):
    response = agent_client.post(
        "/settings",
        data=settings_form(
            org, name="Renamed Org", timezone="Europe/Paris", default_currency="eur",
            document_locale="fr", invoice_grace_period="3", net_payment_term="30",
            portal_embed_origins="https://App.Example.com/\r\n\r\nhttp://localhost:3000\r\n"
            "https://app.example.com",
            brand_color="#AA3355",
        ),
    )  # fmt: skip

    assert response.status_code == 302
    assert (org.name, org.timezone, org.default_currency, org.document_locale) == (
        "Renamed Org", "Europe/Paris", "EUR", "fr",
    )  # fmt: skip
    assert (org.invoice_grace_period, org.net_payment_term) == (3, 30)
    assert org.portal_embed_origins == ["https://app.example.com", "http://localhost:3000"]
    assert org.brand_color == "#aa3355"
    [entry] = entries(org, "organization.updated")
    assert (entry.actor_type, entry.source, entry.actor_label) == (
        "agent", "console", agent_client.agent.email,
    )  # fmt: skip
    assert entry.changes["net_payment_term"] == [0, 30]
    assert entry.changes["portal_embed_origins"] == [
        [], ["https://app.example.com", "http://localhost:3000"]
    ]  # fmt: skip
    page = agent_client.get("/settings")
    assert "Settings saved" in page.text
    assert "Renamed Org" in page.text


def test_saving_without_changes_records_nothing(agent_client, org):
    agent_client.post("/settings", data=settings_form(org))
    assert entries(org, "organization.updated") == []


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("name", "   ", "The organization needs a name."),
        ("name", "TAKEN", "Another organization already uses this name."),
        ("timezone", "Mars/Olympus_Mons", "Choose a time zone from the list."),
        ("default_currency", "ZZZ", "Choose a currency from the list."),
        ("document_locale", "xx", "Choose a language from the list."),
        ("invoice_grace_period", "3651", "Enter a number of days between 0 and 3650."),
        ("invoice_grace_period", "-1", "Enter a number of days between 0 and 3650."),
        ("invoice_grace_period", "", "This field is required."),
        ("net_payment_term", "ten", "Enter a whole number of days."),
        ("net_payment_term", "1.5", "Enter a whole number of days."),
        ("portal_embed_origins", "http://example.com", "Not an origin: http://example.com"),
        ("portal_embed_origins", "https://example.com/app", "Not an origin: https://example.com/app"),
        ("portal_embed_origins", "https://ok.example.com\nhttps://x.com; script-src *",
         "Not an origin: https://x.com; script-src *"),
        ("portal_embed_origins", "https://example.com:99999", "Not an origin: https://example.com:99999"),
        ("portal_embed_origins", "example.com", "such as https://app.example.com"),
        ("portal_embed_origins", "\n".join(f"https://s{i}.example.com" for i in range(21)),
         "At most 20 origins"),
        ("brand_color", "red", "Enter a color as #rrggbb"),
        ("brand_color", "#12345", "Enter a color as #rrggbb"),
        ("logo", (b"GIF89a" + b"\x00" * 32, "logo.gif"), "must be a PNG, JPEG or SVG image"),
        ("logo", (b"<html><script>x</script></html>", "logo.svg"), "must be a PNG, JPEG or SVG"),
        ("logo", (PNG + b"\x00" * 512 * 1024, "big.png"), "at most 512 KB"),
    ],
)  # fmt: skip
def test_each_bad_field_gets_its_message_next_to_it_and_nothing_is_saved(
    agent_client, db_session, org, field, value, message
):
    factories.make_organization("TAKEN")
    db_session.commit()  # what exists before the request; its error rolls back to here
    original = (org.name, org.net_payment_term, org.logo)
    data = settings_form(org, name="Should Not Stick", net_payment_term="15")
    data[field] = value

    response = post_multipart(agent_client, "/settings", data, htmx=True)

    assert response.status_code == 422
    assert response.text.lstrip().startswith('<form id="settings-form"')
    assert "Nothing was saved" in response.text
    assert message in field_html(response, field)
    assert "has-error" not in response.text.replace(f'has-error" id="field-{field}"', "")
    assert (org.name, org.net_payment_term, org.logo) == original
    assert entries(org, "organization.updated") == []


def test_an_invalid_submit_without_htmx_gets_the_whole_page_with_what_was_typed(
    agent_client, db_session, org
):
    db_session.commit()
    response = agent_client.post(
        "/settings", data=settings_form(org, brand_color="blue", name="Typed")
    )

    assert response.status_code == 422
    assert "<html" in response.text
    assert 'value="Typed"' in response.text
    assert "Enter a color as #rrggbb" in field_html(response, "brand_color")


@pytest.mark.parametrize(
    ("upload", "content_type", "disposition"),
    [
        (PNG, "image/png", 'inline; filename="logo.png"'),
        (b"\xff\xd8\xff\xe0" + b"\x00" * 32, "image/jpeg", 'inline; filename="logo.jpg"'),
        (SVG, "image/svg+xml", 'attachment; filename="logo.svg"'),
    ],
)
def test_a_logo_is_stored_and_served_with_its_type_and_svg_cannot_run_script(
    agent_client, org, upload, content_type, disposition
):
    response = agent_client.post(
        "/settings", data={**settings_form(org), "logo": (io.BytesIO(upload), "whatever.bin")}
    )
    assert response.status_code == 302
    assert (org.logo, org.logo_content_type) == (upload, content_type)
    assert '<img src="/settings/logo?v=' in agent_client.get("/settings").text

    served = agent_client.get("/settings/logo")

    assert served.status_code == 200
    assert served.data == upload
    assert served.headers["Content-Type"] == content_type
    assert (
        served.headers["Content-Security-Policy"] == "default-src 'none'; style-src 'unsafe-inline'"
    )
    assert served.headers["Content-Disposition"] == disposition
    assert served.headers["X-Content-Type-Options"] == "nosniff"
    [entry] = entries(org, "organization.updated")
    assert entry.changes["logo"][0] is None and entry.changes["logo"][1].startswith(content_type)


def test_the_logo_can_be_removed_and_is_then_not_found(agent_client, org):
    org.logo, org.logo_content_type = PNG, "image/png"

    agent_client.post("/settings", data={**settings_form(org), "remove_logo": "y"})

    assert org.logo is None
    assert agent_client.get("/settings/logo").status_code == 404
    assert "No logo yet." in agent_client.get("/settings").text


# --- admins only -----------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["support", "viewer"])
def test_support_and_viewers_get_403_on_every_settings_route(make_agent_client, org, role):
    client = make_agent_client(role)
    factories.make_api_key(org)
    api_key = factories.db_scalar(select(ApiKey).where(ApiKey.organization_id == org.id))
    other = factories.make_agent(org, "support")
    org.logo, org.logo_content_type = PNG, "image/png"
    gets = ["/settings", "/settings/logo", "/settings/api-keys", "/settings/agents"]
    posts = {
        "/settings": settings_form(org, name="Hijacked"),
        "/settings/api-keys": {"name": "sneaky"},
        f"/settings/api-keys/{api_key.lago_id}/revoke": {},
        "/settings/agents": {"email": "new@x.test", "role": "admin", "password": "long enough"},
        f"/settings/agents/{other.lago_id}/role": {"role": "admin"},
        f"/settings/agents/{other.lago_id}/deactivate": {},
        f"/settings/agents/{client.agent.lago_id}/role": {"role": "admin"},
    }

    for url in gets:
        assert client.get(url).status_code == 403, url
        assert client.get(url, htmx=True).status_code == 403, url
    for url, data in posts.items():
        assert client.post(url, data=data).status_code == 403, url

    assert org.name != "Hijacked"
    assert api_key.revoked_at is None
    assert (other.role.value, other.is_active, client.agent.role.value) == ("support", True, role)
    assert factories.db_scalar(select(Agent).where(Agent.email == "new@x.test")) is None
    assert 'href="/settings"' not in client.get("/customers").text


@pytest.fixture
def org_with_key(org):
    """The organization with one API key, as most have."""
    factories.make_api_key(org)
    return org


# --- API keys --------------------------------------------------------------------------------


def test_a_new_key_is_shown_once_works_on_the_api_and_stops_working_when_revoked(
    agent_client, client, org
):
    created = agent_client.post("/settings/api-keys", data={"name": "CRM sync"})

    assert created.status_code == 201
    assert created.headers["Cache-Control"] == "no-store"
    raw_key = re.search(r'<code id="new-api-key">([^<]+)</code>', created.text).group(1)
    assert 'data-copy="#new-api-key"' in created.text
    api_key = factories.db_scalar(select(ApiKey).where(ApiKey.name == "CRM sync"))
    assert api_key.organization_id == org.id and raw_key.startswith(api_key.prefix)

    listing = agent_client.get("/settings/api-keys")
    assert raw_key not in listing.text
    assert f"{api_key.prefix}…" in listing.text and "CRM sync" in listing.text
    bearer = {"Authorization": f"Bearer {raw_key}"}
    assert client.get("/api/v1/customers", headers=bearer).status_code == 200
    assert api_key.last_used_at is not None

    revoked = agent_client.post(f"/settings/api-keys/{api_key.lago_id}/revoke", htmx=True)

    assert revoked.status_code == 200
    assert revoked.text.lstrip().startswith('<section id="api-keys-table"')
    assert "is revoked" in revoked.text
    assert api_key.revoked_at is not None
    assert client.get("/api/v1/customers", headers=bearer).status_code == 401
    assert [(e.activity_type, e.actor_label) for e in entries(org, "api_key.created")][-1] == (
        "api_key.created", agent_client.agent.email,
    )  # fmt: skip
    [entry] = entries(org, "api_key.revoked")
    assert entry.resource_id == str(api_key.lago_id) and entry.actor_type == "agent"


def test_revoke_asks_for_confirmation_and_works_without_javascript(agent_client, org_with_key):
    api_key = factories.db_scalar(select(ApiKey).where(ApiKey.organization_id == org_with_key.id))
    listing = agent_client.get("/settings/api-keys")
    assert re.search(
        r'<form method="post" action="[^"]+/revoke"[^>]*hx-confirm="Revoke', listing.text
    )

    response = agent_client.post(f"/settings/api-keys/{api_key.lago_id}/revoke")

    assert response.status_code == 302
    assert "is revoked" in agent_client.get("/settings/api-keys").text
    again = agent_client.post(f"/settings/api-keys/{api_key.lago_id}/revoke")
    assert again.status_code == 302
    assert len(entries(org_with_key, "api_key.revoked")) == 1


def test_another_organizations_key_cannot_be_revoked(agent_client):
    other = factories.make_organization()
    factories.make_api_key(other)
    theirs = factories.db_scalar(select(ApiKey).where(ApiKey.organization_id == other.id))

    assert agent_client.post(f"/settings/api-keys/{theirs.lago_id}/revoke").status_code == 404
    assert theirs.revoked_at is None
    assert theirs.prefix not in agent_client.get("/settings/api-keys").text


def test_a_key_name_longer_than_255_characters_is_refused(agent_client, org):
    response = agent_client.post("/settings/api-keys", data={"name": "x" * 256})
    assert response.status_code == 422
    assert factories.db_scalar(select(ApiKey).where(ApiKey.organization_id == org.id)) is None


# --- agents ----------------------------------------------------------------------------------


def test_an_admin_adds_an_agent_who_can_then_sign_in(agent_client, client, org):
    response = agent_client.post(
        "/settings/agents",
        data={"email": " New.Agent@Example.com ", "name": "Nia", "role": "viewer",
              "password": "long enough"},
    )  # fmt: skip

    assert response.status_code == 302
    agent = factories.db_scalar(select(Agent).where(Agent.email == "new.agent@example.com"))
    assert (agent.organization_id, agent.role.value, agent.name) == (org.id, "viewer", "Nia")
    listing = agent_client.get("/settings/agents")
    assert "new.agent@example.com" in listing.text and "added as viewer" in listing.text
    [entry] = [e for e in entries(org, "agent.created") if e.resource_id == str(agent.lago_id)]
    assert entry.actor_label == agent_client.agent.email


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"email": "nobody"}, "email", "Enter a valid e-mail address."),
        ({"email": "TAKEN@agents.test"}, "email", "already signs in with this e-mail"),
        ({"password": "short"}, "password", "at least 8 characters"),
        ({"role": "owner"}, "role", "Choose a role from the list."),
        ({"role": ""}, "role", "Choose a role from the list."),
    ],
)
def test_adding_an_agent_with_bad_input_shows_the_field_error(
    agent_client, db_session, org, data, field, message
):
    factories.make_agent(factories.make_organization(), "admin", email="taken@agents.test")
    db_session.commit()
    form = {"email": "fresh@agents.test", "role": "support", "password": "long enough", **data}

    response = agent_client.post("/settings/agents", data=form, htmx=True)

    assert response.status_code == 422
    assert response.text.lstrip().startswith('<form id="agent-form"')
    assert message in field_html(response, field)
    count = select(Agent.id).where(Agent.organization_id == org.id)
    assert len(scalars(count)) == 1  # only the signed-in admin


def test_changing_a_role_and_deactivating_are_recorded_and_take_effect(
    agent_client, make_agent_client, org
):
    colleague = make_agent_client("support")
    agent = colleague.agent
    assert colleague.get("/customers").status_code == 200

    promoted = agent_client.post(
        f"/settings/agents/{agent.lago_id}/role", data={"role": "admin"}, htmx=True
    )
    assert promoted.status_code == 200
    assert promoted.text.lstrip().startswith('<section id="agents-table"')
    assert f"{agent.email} is now admin" in promoted.text
    assert colleague.get("/settings").status_code == 200

    deactivated = agent_client.post(f"/settings/agents/{agent.lago_id}/deactivate", data={})
    assert deactivated.status_code == 302
    assert agent.is_active is False
    assert colleague.get("/customers").headers["Location"].startswith("/login")

    agent_client.post(f"/settings/agents/{agent.lago_id}/reactivate", data={})
    assert agent.is_active is True
    changes = [
        e.changes for e in entries(org, "agent.updated") if e.resource_id == str(agent.lago_id)
    ]
    assert changes == [
        {"role": ["support", "admin"]},
        {"is_active": [True, False]},
        {"is_active": [False, True]},
    ]


def test_an_admin_cannot_demote_or_deactivate_themselves(agent_client, db_session, org):
    db_session.commit()
    me = agent_client.agent
    page = agent_client.get("/settings/agents")
    assert f"/settings/agents/{me.lago_id}/deactivate" not in page.text
    assert f"/settings/agents/{me.lago_id}/role" not in page.text

    demoted = agent_client.post(
        f"/settings/agents/{me.lago_id}/role", data={"role": "viewer"}, htmx=True
    )
    deactivated = agent_client.post(f"/settings/agents/{me.lago_id}/deactivate", data={})

    assert demoted.status_code == 422
    assert "You cannot change your own role" in demoted.text
    assert deactivated.status_code == 302
    assert "You cannot deactivate yourself." in agent_client.get("/settings/agents").text
    assert (me.role.value, me.is_active) == ("admin", True)
    assert entries(org, "agent.updated") == []


def test_the_organization_always_keeps_an_active_admin(org):
    only_admin = factories.make_agent(org, "admin")
    other_admin = factories.make_agent(org, "admin")

    settings_service.update_agent(org, other_admin, factories.TEST_ACTOR, role="support")
    with pytest.raises(ValidationFailed) as demote:
        settings_service.update_agent(org, only_admin, factories.TEST_ACTOR, role="viewer")
    with pytest.raises(ValidationFailed) as deactivate:
        settings_service.update_agent(org, only_admin, factories.TEST_ACTOR, is_active=False)

    assert demote.value.details == {"role": ["last_admin"]}
    assert deactivate.value.details == {"is_active": ["last_admin"]}
    assert (only_admin.role.value, only_admin.is_active) == ("admin", True)
    # Once another admin is active again, the first one may step down.
    settings_service.update_agent(org, other_admin, factories.TEST_ACTOR, role="admin")
    settings_service.update_agent(org, only_admin, factories.TEST_ACTOR, role="support")
    assert only_admin.role.value == "support"


def test_another_organizations_agent_cannot_be_changed(agent_client):
    theirs = factories.make_agent(factories.make_organization(), "support")

    response = agent_client.post(f"/settings/agents/{theirs.lago_id}/role", data={"role": "admin"})

    assert response.status_code == 404
    assert theirs.role.value == "support"
    assert theirs.email not in agent_client.get("/settings/agents").text
