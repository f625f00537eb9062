"""Customer search as a support agent or an API client sees it, on SQLite and PostgreSQL.

Every word of a term must match: words of 3+ characters anywhere in a searched field, shorter
ones at the start of a word. Fields: name, first and last name, legal name, e-mail, external
id, tax id, metadata values and CRM ids. Deleted customers and other organizations' customers
are never found.
"""

from __future__ import annotations

import itertools
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, event, insert, select, text

from billing.models import Customer
from billing.services.customers import CustomerFilters, delete_customer, list_customers
from billing.timeutil import set_clock
from extensions import db
from tests import factories
from tests.factories import make_customer


@pytest.fixture
def ticking_clock() -> None:
    """Each reading of the clock a minute after the previous one: creation order is certain."""
    minutes = itertools.count()
    start = datetime(2026, 1, 1, tzinfo=UTC)
    set_clock(lambda: start + timedelta(minutes=next(minutes)))


def search(api_client: Any, term: str, **params: Any) -> tuple[list[str], int]:
    """The external ids the API lists for `term`, in order, and its total_count."""
    response = api_client.get("/api/v1/customers", query_string={"search_term": term, **params})
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    return [c["external_id"] for c in body["customers"]], body["meta"]["total_count"]


def found(api_client: Any, term: str) -> set[str]:
    ids, total = search(api_client, term)
    assert total == len(ids)
    return set(ids)


@pytest.fixture
def directory(org: Any) -> None:
    """A few customers with distinct fields (no default e-mail to match by accident)."""
    make_customer(
        org,
        external_id="nw-7781",
        name="Northwind Traders",
        email="ops@northwind.example",
    )
    make_customer(
        org,
        external_id="contoso",
        name="Contoso",
        legal_name="Contoso Pharmaceuticals GmbH",
        email=None,
    )
    make_customer(org, external_id="fab-1", name="Fabrikam", email="hello@fabrikam.test")


@pytest.mark.parametrize(
    ("term", "expected"),
    [
        ("wind", {"nw-7781"}),  # inside a word of the name
        ("TRADERS", {"nw-7781"}),
        ("ops@northwind.exa", {"nw-7781"}),  # e-mail fragment
        ("7781", {"nw-7781"}),  # external id fragment
        ("w-77", {"nw-7781"}),
        ("pharmaceut", {"contoso"}),  # legal name
        ("ticals gmbh", {"contoso"}),
        ("rikam", {"fab-1"}),
        ("fabrikam.test", {"fab-1"}),
        ("globex", set()),
    ],
)
def test_words_of_three_or_more_characters_match_anywhere_in_a_field(
    api_client: Any, directory: None, term: str, expected: set[str]
) -> None:
    assert found(api_client, term) == expected


def test_short_words_match_the_start_of_a_word(api_client: Any, org: Any) -> None:
    make_customer(org, external_id="a-1", name="Maja Kowalski", email="maja@kowalski.test")
    make_customer(org, external_id="b-1", name="Jasper Quinn", email="jq@quinn.test")

    assert found(api_client, "ja") == {"b-1"}  # "Maja" has "ja" inside a word only
    assert found(api_client, "j") == {"b-1"}
    assert found(api_client, "Q") == {"b-1"}
    assert found(api_client, "ko") == {"a-1"}
    assert found(api_client, "al") == set()  # inside "Kowalski" only
    assert found(api_client, "1") == {"a-1", "b-1"}  # "a-1": digits are words too
    assert found(api_client, "o'") == set()  # the word start "o": none here
    assert found(api_client, "jasper q") == {"b-1"}


def test_metadata_values_and_crm_ids_are_searched(api_client: Any, org: Any) -> None:
    make_customer(
        org,
        external_id="crm-linked",
        name="Linked Ltd",
        metadata=[{"key": "contract", "value": "CTR-2024-0042", "display_in_invoice": False}],
        external_salesforce_id="0015g00000XyZabAAF",
        integration_customers=[
            {"integration_type": "netsuite", "external_customer_id": "NS-99812"},
            {"integration_type": "hubspot", "external_customer_id": "hs-5550123"},
        ],
    )
    make_customer(org, external_id="other", name="Other Ltd")

    for term in ("ctr-2024-0042", "2024-00", "0015g00000xyzabaaf", "XyZab", "ns-99812", "5550123"):
        assert found(api_client, term) == {"crm-linked"}, term
    # Metadata keys are not searched, only their values.
    assert found(api_client, "contract") == set()


@pytest.mark.parametrize(
    ("term", "expected"),
    [
        ("zoe", {"zoe-accent", "zoe-plain"}),
        ("ZOË", {"zoe-accent", "zoe-plain"}),
        ("muller", {"zoe-accent"}),
        ("MÜLLER-LÜDEN", {"zoe-accent"}),
        ("societe gen", {"societe"}),
        ("GÉNÉRALE", {"societe"}),
        ("straße", {"strasse"}),  # casefolded: ß is ss
        ("STRASSE", {"strasse"}),
    ],
)
def test_search_ignores_case_and_accents(
    api_client: Any, org: Any, term: str, expected: set[str]
) -> None:
    make_customer(org, external_id="zoe-accent", name="Zoë Müller-Lüdenscheidt", email=None)
    make_customer(org, external_id="zoe-plain", name="Zoe Smith", email=None)
    make_customer(
        org, external_id="societe", name="SG", legal_name="Société Générale SA", email=None
    )
    make_customer(org, external_id="strasse", name="Hauptstraße Kiosk", email=None)

    assert found(api_client, term) == expected


def test_every_word_must_match_in_any_order_and_field(api_client: Any, org: Any) -> None:
    make_customer(org, external_id="john-acme", name="Acme Corp", firstname="John", email=None)
    make_customer(org, external_id="john-globex", name="Globex", firstname="John", email=None)
    make_customer(org, external_id="jane-acme", name="Acme Corp", firstname="Jane", email=None)

    assert found(api_client, "acme john") == {"john-acme"}
    assert found(api_client, "JOHN   acme") == {"john-acme"}
    assert found(api_client, "acme j") == {"john-acme", "jane-acme"}
    assert found(api_client, "acme ja") == {"jane-acme"}
    assert found(api_client, "acme john globex") == set()


def test_deleted_customers_are_not_found_until_recreated(api_client: Any, org: Any) -> None:
    make_customer(org, external_id="phoenix", name="Phoenix Old Name")
    make_customer(org, external_id="bystander", name="Phoenix Bystander")
    assert found(api_client, "phoenix") == {"phoenix", "bystander"}

    assert api_client.delete("/api/v1/customers/phoenix").status_code == 200
    assert search(api_client, "phoenix") == (["bystander"], 1)
    assert search(api_client, "old name") == ([], 0)

    response = api_client.post(
        "/api/v1/customers",
        json={"customer": {"external_id": "phoenix", "name": "Phoenix Reborn"}},
    )
    assert response.status_code == 200
    assert found(api_client, "phoenix") == {"phoenix", "bystander"}
    assert search(api_client, "reborn") == (["phoenix"], 1)
    assert search(api_client, "old name") == ([], 0)


def test_the_list_of_deleted_customers_searches_them_only(org: Any) -> None:
    gone = make_customer(org, external_id="gone", name="Vanished Ltd")
    make_customer(org, external_id="here", name="Vanguard")
    delete_customer(org, gone, factories.TEST_ACTOR)

    def listed(term: str, status: str | None) -> list[str]:
        page = list_customers(org, CustomerFilters(search_term=term, status=status))
        assert page.total_count == len(page.items)
        return [c.external_id for c in page.items]

    assert listed("van", None) == ["here"]
    assert listed("van", "deleted") == ["gone"]
    assert listed("va", "deleted") == ["gone"]  # a word start, as for live customers
    assert listed("ished", "deleted") == ["gone"]
    assert listed("ished l", "deleted") == ["gone"]
    assert listed("guard", "deleted") == []
    assert listed("%", "deleted") == []


def test_other_organizations_customers_are_never_found(api_client: Any, org: Any) -> None:
    other = factories.make_organization()
    for n in range(3):
        make_customer(other, external_id=f"theirs-{n}", name=f"Initech Branch {n}")
    make_customer(org, external_id="ours", name="Initech Branch HQ")

    assert search(api_client, "initech") == (["ours"], 1)
    assert search(api_client, "i b") == (["ours"], 1)
    page = list_customers(other, CustomerFilters(search_term="initech branch"))
    assert {c.external_id for c in page.items} == {"theirs-0", "theirs-1", "theirs-2"}
    assert page.total_count == 3


SPECIAL_NAMES = {
    "pct": "50% Off Outlet",
    "under": "Under_Score Ltd",
    "quote": 'Quote "Q" Corp',
    "apos": "O'Brien Sons",
    "paren": "Paren(thesis) Co",
    "colon": "Colon: The Company",
    "dash": "Dash-Board Inc",
    "and": "AND Partners",
    "near": "NEAR Logistics",
    "star": "Acme Star",
    "dots": "Dot...Com",
}


@pytest.fixture
def special_names(org: Any) -> None:
    for key, name in SPECIAL_NAMES.items():
        make_customer(org, external_id=f"sp-{key}", name=name, email=None)


@pytest.mark.parametrize(
    ("term", "expected"),
    [
        ("50%", {"sp-pct"}),
        ("%%%", set()),  # not "anything, thrice"
        ("r_s", {"sp-under"}),  # "r_s", not "r, any character, s"
        ("___", set()),
        ('quote "q"', {"sp-quote"}),
        ('"q"', {"sp-quote"}),
        ('"""', set()),
        ("o'brien", {"sp-apos"}),
        ("'brien", {"sp-apos"}),
        ("paren(th", {"sp-paren"}),
        ("(thesis)", {"sp-paren"}),
        ("colon:", {"sp-colon"}),
        ("colon: the", {"sp-colon"}),
        ("dash-board", {"sp-dash"}),
        ("-board", {"sp-dash"}),
        ("AND", {"sp-and"}),
        ("and partners", {"sp-and"}),
        ("NEAR", {"sp-near"}),
        ("NEAR(acme star)", set()),
        ("acme*", set()),  # not a prefix query
        ("*acme", set()),
        ("acme OR near", set()),  # every word must match: "or" starts no word here
        ("...", {"sp-dots"}),
        ("t...c", {"sp-dots"}),
    ],
)
def test_special_characters_are_plain_characters(
    api_client: Any, special_names: None, term: str, expected: set[str]
) -> None:
    assert found(api_client, term) == expected


@pytest.mark.parametrize("term", ['"', "*", "%", "_", "'", "(", ":", "-", "!!", "()", "%_"])
def test_a_term_of_punctuation_only_finds_nobody(
    api_client: Any, special_names: None, term: str
) -> None:
    # One or two punctuation marks start no word; above all they are no wildcard.
    assert search(api_client, term) == ([], 0)


def test_a_blank_term_lists_everyone(api_client: Any, special_names: None) -> None:
    assert search(api_client, "   ")[1] == len(SPECIAL_NAMES)


def test_changes_are_searchable_at_once(api_client: Any, org: Any) -> None:
    make_customer(
        org,
        external_id="renamed",
        name="Vandelay Industries",
        metadata=[{"key": "tier", "value": "latex-gold", "display_in_invoice": False}],
    )
    assert found(api_client, "vandelay") == {"renamed"}

    response = api_client.post(
        "/api/v1/customers",
        json={
            "customer": {
                "external_id": "renamed",
                "name": "Kramerica",
                "metadata": [{"key": "tier", "value": "latex-silver"}],
            }
        },
    )
    assert response.status_code == 200
    assert found(api_client, "vandelay") == set()
    assert found(api_client, "latex-gold") == set()
    assert found(api_client, "kramerica") == {"renamed"}
    assert found(api_client, "latex-silver") == {"renamed"}


def test_results_come_newest_first_with_total_count_on_every_page(
    api_client: Any, org: Any
) -> None:
    start = datetime(2026, 3, 1, tzinfo=UTC)
    # 24 matches, created one minute apart, but the last four at the same instant (those are
    # ordered by id); some non-matching customers in between.
    for n in range(30):
        at = start + timedelta(minutes=min(n, 20))
        set_clock(lambda at=at: at)
        make_customer(org, external_id=f"m-{n:02d}", name="Umbrella" if n % 5 else "Other")
    set_clock(None)
    matching = [f"m-{n:02d}" for n in range(30) if n % 5]
    expected = sorted(matching, key=lambda e: -min(int(e[2:]), 20))  # stable: ties keep id order

    ids, total = search(api_client, "umbrella", per_page=100)
    assert (ids, total) == (expected, 24)
    # One by one (many matches per page: the listing walks customers newest first) and in
    # pages of seven (few: it sorts the matches), the order is the same.
    one_by_one = [search(api_client, "umbrella", per_page=1, page=p) for p in range(1, 25)]
    assert [ids[0] for ids, _total in one_by_one] == expected
    assert {total for _ids, total in one_by_one} == {24}
    by_seven = [search(api_client, "umbrella", per_page=7, page=p)[0] for p in range(1, 5)]
    assert [i for ids in by_seven for i in ids] == expected
    assert search(api_client, "umbrella", per_page=7, page=5) == ([], 24)


def test_search_combines_with_other_filters(api_client: Any, org: Any) -> None:
    make_customer(org, external_id="eur", name="Hooli Europe", currency="EUR")
    make_customer(org, external_id="usd", name="Hooli America", currency="USD")

    ids, total = search(api_client, "hooli", **{"currencies[]": "EUR"})
    assert (ids, total) == (["eur"], 1)


def test_a_broad_search_with_a_filter_pages_and_counts_the_filtered_matches(
    org: Any, ticking_clock: None
) -> None:
    for n in range(44):
        make_customer(org, external_id=f"h-{n:02d}", name="Hooli", currency=("EUR", "USD")[n % 2])
    filters = CustomerFilters(search_term="hoo", currencies=["EUR"])

    pages = [list_customers(org, filters, page=p, per_page=1) for p in range(1, 23)]
    assert [page.items[0].external_id for page in pages] == [
        f"h-{n:02d}" for n in reversed(range(0, 44, 2))
    ]
    assert {page.total_count for page in pages} == {22}
    assert list_customers(org, filters, page=23, per_page=1).items == []


@pytest.mark.parametrize("sort", ["name", "-name", "created_at"])
def test_pages_of_a_broad_search_follow_the_sort_order(
    org: Any, ticking_clock: None, sort: str
) -> None:
    for n in range(25):
        make_customer(org, external_id=f"s-{n:02d}", name=f"Soylent {chr(ord('z') - n)}")
    make_customer(org, external_id="other", name="Tyrell")
    filters = CustomerFilters(search_term="soylent")

    listed = [c.external_id for c in list_customers(org, filters, sort=sort).items]
    by_name = [f"s-{n:02d}" for n in reversed(range(25))]
    expected = {"name": by_name, "-name": by_name[::-1], "created_at": by_name[::-1]}[sort]
    assert listed == expected
    pages = [list_customers(org, filters, page=p, per_page=1, sort=sort) for p in range(1, 26)]
    assert [page.items[0].external_id for page in pages] == expected
    assert {page.total_count for page in pages} == {25}


# --- query plans: the search stays on its index ----------------------------------------------


@contextmanager
def search_statements() -> Iterator[list[tuple[str, Any]]]:
    """The statements (and their parameters) that search customers, as sent to the database."""
    captured: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if "customer_search MATCH" in statement or "search_text LIKE" in statement:
            captured.append((statement, parameters))

    event.listen(Engine, "before_cursor_execute", capture)
    try:
        yield captured
    finally:
        event.remove(Engine, "before_cursor_execute", capture)


def plan_of(statement: str, parameters: Any, backend: str) -> str:
    connection = db.session.connection()
    if backend == "sqlite":
        rows = connection.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters).all()
        return "\n".join(row[-1] for row in rows)
    rows = connection.exec_driver_sql("EXPLAIN " + statement, parameters).all()
    return "\n".join(row[0] for row in rows)


def test_on_sqlite_the_search_reads_the_trigram_index(
    api_client: Any, org: Any, backend: str
) -> None:
    """The matches come from the FTS5 table (a MATCH within the organization's rowid range);
    customers are then read by id, never scanned."""
    if backend != "sqlite":
        pytest.skip("SQLite's FTS5 index")
    for n in range(30):
        make_customer(org, external_id=f"c-{n}", name=f"Customer {n}", currency="EUR")
    make_customer(org, external_id="nw-7781", name="Northwind Traders", currency="EUR")

    with search_statements() as statements:
        assert search(api_client, "northwind") == (["nw-7781"], 1)
        assert search(api_client, "wind", **{"currencies[]": "EUR"}) == (["nw-7781"], 1)
        assert search(api_client, "customer", per_page=2, page=3)[1] == 30

    assert len(statements) >= 3
    for statement, parameters in statements:
        plan = plan_of(statement, parameters, backend)
        assert re.search(r"SCAN customer_search VIRTUAL TABLE INDEX \d+:M", plan), plan
        assert not re.search(r"^SCAN customers$", plan, re.MULTILINE), plan


def postgresql_only(backend: str) -> None:
    if backend != "postgresql":
        pytest.skip("PostgreSQL's trigram index")


def add_customers(org: Any, count: int) -> None:
    """`count` plain customers in one statement, copies of a customer of the factory."""
    template = make_customer(org, external_id="template", name="Template")
    row = dict(
        db.session.execute(select(Customer.__table__).where(Customer.id == template.id))
        .one()
        ._mapping
    )
    del row["id"]
    db.session.execute(
        insert(Customer.__table__),
        [
            {
                **row,
                "lago_id": uuid.uuid4(),
                "external_id": f"bulk-{n}",
                "sequential_id": 100_000 + n,  # past the counter of this test's customers
                "name": f"Customer {n}",
                "search_text": f"customer {n}\nbulk-{n}\n  cu  bu  {str(n)[:2]}",
            }
            for n in range(count)
        ],
    )


def test_on_postgresql_a_selective_search_reads_the_trigram_index(
    api_client: Any, org: Any, backend: str
) -> None:
    """With thousands of customers and fresh statistics, a search matching one of them is
    answered by the pg_trgm GIN index, not by a walk of the organization's customers."""
    postgresql_only(backend)
    make_customer(org, external_id="nw-7781", name="Northwind Traders")
    add_customers(org, 5000)
    # as autovacuum would: the index's pending entries merged, statistics up to date
    db.session.execute(text("SELECT gin_clean_pending_list('ix_customers_search_trgm')"))
    db.session.execute(text("ANALYZE customers"))

    with search_statements() as statements:
        assert search(api_client, "northwind") == (["nw-7781"], 1)
        assert search(api_client, "traders nw") == (["nw-7781"], 1)

    assert len(statements) == 2
    for statement, parameters in statements:
        plan = plan_of(statement, parameters, backend)
        assert "Bitmap Index Scan on ix_customers_search_trgm" in plan, plan
        assert "Seq Scan on customers" not in plan, plan


def test_on_postgresql_the_search_is_never_a_prepared_statement(
    api_client: Any, org: Any, backend: str
) -> None:
    """psycopg prepares a statement run a few times on one connection, and PostgreSQL's generic
    plan for a search may ignore the trigram index: the application's connections never do."""
    postgresql_only(backend)
    make_customer(org, external_id="nw-7781", name="Northwind Traders")

    for _ in range(10):
        assert search(api_client, "northwind") == (["nw-7781"], 1)

    connection = db.session.connection()
    assert connection.connection.driver_connection.prepare_threshold is None
    assert connection.execute(text("SELECT count(*) FROM pg_prepared_statements")).scalar() == 0
