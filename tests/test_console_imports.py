"""Importing customers from the console: upload, preview, confirm, progress, permissions."""

from __future__ import annotations

import io
import re

import pytest
from sqlalchemy import func, select

from billing.models import ActivityLog, Customer, CustomerImport
from billing.services import imports
from billing.services.customers import find_customer
from extensions import db
from jobs.imports import run_queued_imports
from tests import factories

BAD_FILE = (
    "external_id,name,email,country\n"
    "acme,Acme,billing@acme.test,FR\n"
    "globex,Globex,not-an-email,US\n"
    "initech,Initech,,Narnia\n"
    ",Hooli,hello@hooli.test,US\n"
)


def upload(client, text, filename="customers.csv", **kwargs):
    return client.post(
        "/imports/new", data={"file": (io.BytesIO(text.encode("utf-8")), filename)}, **kwargs
    )


def customer_count(org):
    return db.session.scalar(
        select(func.count()).select_from(Customer).where(Customer.organization_id == org.id)
    )


def only_import():
    return db.session.scalars(select(CustomerImport)).one()


def test_the_upload_page_explains_the_file(agent_client):
    response = agent_client.get("/imports/new")

    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert 'enctype="multipart/form-data"' in page
    assert "metadata.&lt;key&gt;" in page
    assert "Nothing is written until you confirm" in page


def test_upload_shows_a_preview_with_invalid_rows_and_writes_no_customer(agent_client, org):
    factories.make_customer(org, external_id="acme", name="Old Acme")

    response = upload(agent_client, BAD_FILE, "crm-export.csv")

    assert response.status_code == 302
    preview = agent_client.get(response.headers["Location"])
    page = preview.get_data(as_text=True)
    assert "Import of crm-export.csv" in page
    assert "nothing has been written yet" in page
    cards = dict(re.findall(r'card-label">([^<]+)</span><span class="card-value">(\d+)', page))
    assert cards == {
        "Rows": "4",
        "New customers": "1",
        "Updated customers": "1",
        "Invalid rows": "2",
    }
    assert re.search(r"<td>3</td>\s*<td class=\"mono\">globex</td>", page)
    assert "Enter valid e-mail addresses, separated by commas." in page
    assert re.search(r"<td>4</td>\s*<td class=\"mono\">initech</td>", page)
    assert "Choose a country from the list." in page
    assert "1 row without an external id will get a generated one" in page
    assert "Confirm import of 2 rows" in page
    assert customer_count(org) == 1
    assert find_customer(org, "acme").name == "Old Acme"


def test_confirming_a_small_import_applies_it_at_once(agent_client, org):
    factories.make_customer(org, external_id="acme", name="Old Acme", email="old@acme.test")
    upload(agent_client, "external_id,name,email\nacme,Acme,\nglobex,Globex,g@globex.test\n")
    customer_import = only_import()

    response = agent_client.post(f"/imports/{customer_import.lago_id}/confirm")

    assert response.status_code == 302
    result = agent_client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Imported: 1 created, 1 updated." in result
    assert "Import finished" in result
    assert "hx-trigger" not in result
    acme = find_customer(org, "acme")
    assert (acme.name, acme.email) == ("Acme", "old@acme.test")
    assert find_customer(org, "globex").email == "g@globex.test"
    by_agent = db.session.execute(
        select(ActivityLog.activity_type, ActivityLog.source).where(
            ActivityLog.organization_id == org.id,
            ActivityLog.actor_id == str(agent_client.agent.lago_id),
        )
    ).all()
    assert sorted(by_agent) == [("customer.created", "console"), ("customer.updated", "console")]

    again = agent_client.post(f"/imports/{customer_import.lago_id}/confirm")
    assert "already confirmed" in agent_client.get(again.headers["Location"]).get_data(True)
    assert customer_count(org) == 2


def test_a_large_import_runs_in_the_jobs_process_with_a_progress_bar(agent_client, org):
    rows = "".join(f"c{i},Customer {i}\n" for i in range(imports.INLINE_MAX_ROWS + 5))
    upload(agent_client, "external_id,name\n" + rows)
    customer_import = only_import()
    url = f"/imports/{customer_import.lago_id}"

    agent_client.post(f"{url}/confirm")

    assert customer_count(org) == 0
    waiting = agent_client.get(url).get_data(as_text=True)
    assert "Waiting to start" in waiting
    assert f'<progress max="{imports.INLINE_MAX_ROWS + 5}" value="0">' in waiting
    assert 'hx-trigger="every 1s"' in waiting

    run_queued_imports()

    partial = agent_client.get(url, htmx=True).get_data(as_text=True)
    assert partial.lstrip().startswith('<section id="import-progress"')
    assert "<html" not in partial
    assert "hx-trigger" not in partial  # done: the page stops polling
    assert "Import finished" in partial
    assert f'card-value">{imports.INLINE_MAX_ROWS + 5}<' in partial
    assert customer_count(org) == imports.INLINE_MAX_ROWS + 5


def test_a_running_import_shows_its_progress(agent_client, org):
    rows = "".join(f"c{i},Customer {i}\n" for i in range(10))
    upload(agent_client, "external_id,name\n" + rows)
    customer_import = only_import()
    imports.queue_import(customer_import)
    imports.claim_queued_import()

    def stop_after_first_batch(current):
        db.session.commit()
        raise RuntimeError("stopped while running")

    with pytest.raises(RuntimeError):
        imports.run_import(
            customer_import, factories.TEST_ACTOR, batch_size=4, progress=stop_after_first_batch
        )

    partial = agent_client.get(f"/imports/{customer_import.lago_id}", htmx=True).get_data(True)
    assert "Importing…" in partial
    assert '<progress max="10" value="4">' in partial
    assert "4 of 10 rows · 4 created" in partial
    assert 'hx-trigger="every 1s"' in partial


def test_cancel_drops_the_preview(agent_client, org):
    upload(agent_client, BAD_FILE)
    customer_import = only_import()

    response = agent_client.post(f"/imports/{customer_import.lago_id}/cancel")

    assert response.headers["Location"].endswith("/imports/new")
    assert db.session.scalar(select(func.count()).select_from(CustomerImport)) == 0
    assert customer_count(org) == 0


def test_a_file_that_cannot_be_imported_is_explained_on_the_form(agent_client):
    response = upload(agent_client, "external_id,nom,plan\nacme,Acme,gold\n")

    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "Unknown columns: nom, plan." in page
    assert db.session.scalar(select(func.count()).select_from(CustomerImport)) == 0


def test_nothing_to_import_disables_confirmation(agent_client, org):
    upload(agent_client, "external_id,email\nacme,nope\n")
    customer_import = only_import()

    page = agent_client.get(f"/imports/{customer_import.lago_id}").get_data(as_text=True)
    refused = agent_client.post(f"/imports/{customer_import.lago_id}/confirm")

    assert re.search(r'<button class="button button-primary" type="submit" disabled>', page)
    assert "No row of this file can be imported." in agent_client.get(
        refused.headers["Location"]
    ).get_data(as_text=True)
    assert customer_count(org) == 0


def test_viewers_cannot_upload_or_confirm(agent_client, make_agent_client, org):
    upload(agent_client, BAD_FILE)
    customer_import = only_import()
    viewer = make_agent_client("viewer")

    assert viewer.get("/imports/new").status_code == 403
    assert upload(viewer, BAD_FILE).status_code == 403
    assert viewer.post(f"/imports/{customer_import.lago_id}/confirm").status_code == 403
    assert viewer.post(f"/imports/{customer_import.lago_id}/cancel").status_code == 403
    assert customer_count(org) == 0
    assert only_import().status == "previewed"


def test_posts_without_the_csrf_token_are_refused(agent_client, org):
    upload(agent_client, BAD_FILE)
    customer_import = only_import()

    refused_upload = upload(agent_client, BAD_FILE, csrf=False)
    refused_confirm = agent_client.post(f"/imports/{customer_import.lago_id}/confirm", csrf=False)

    assert refused_upload.status_code == 400
    assert refused_confirm.status_code == 400
    assert only_import().status == "previewed"
    assert customer_count(org) == 0


def test_an_import_of_another_organization_is_not_found(agent_client):
    other = factories.make_organization()
    customer_import = imports.preview_import(other, "x.csv", "external_id\na\n", agent_id=None)

    assert agent_client.get(f"/imports/{customer_import.lago_id}").status_code == 404
    assert agent_client.post(f"/imports/{customer_import.lago_id}/confirm").status_code == 404
