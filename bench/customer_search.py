"""Customer search benchmark: the full listing service against the bare index query.

Seeds N customers (default 200,000) in one organization, plus a second organization of N/10
(so that organization scoping has rows to skip) and 2% soft-deleted customers, on a schema
built by the real migrations, with bulk core inserts whose search_text comes from the
service's own build_search_text. Then times a support-desk query mix (name prefixes, names,
e-mail fragments, external id fragments, CRM ids, metadata values, broad terms) with the
service the API calls, `list_customers(org, CustomerFilters(search_term=...), per_page=100)`:
the first page of customers with their metadata and CRM links, plus `total_count`. The
serializer that the API's list endpoint then runs on every listed customer
(blueprints/api/customers.py) is timed too, apart: "+ serializer" is the service and the
serializer, all the endpoint does but parse the request and encode the JSON. Each query is also
run as the bare index query, counting its matches, as a baseline: the FTS5 MATCH on SQLite,
the pg_trgm LIKEs on PostgreSQL.

Queries are classed by their actual hit count: selective (<= 1,000 hits) and broad (>= 10% of
the organization's customers); the few in between are reported as "medium". Targets on 2 cores:
selective p95 < 10 ms, broad p95 < 100 ms.

    .venv/bin/python bench/customer_search.py                      # SQLite only
    .venv/bin/python bench/customer_search.py \\
        --database-url postgresql+psycopg://postgres@127.0.0.1:5432/test  # and PostgreSQL

With --database-url a throwaway database is created on that server and dropped at the end
(--keep keeps it, to EXPLAIN queries afterwards). `make bench BENCH_ARGS="..."` runs this.
"""

from __future__ import annotations

import argparse
import gc
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402  (re-exported: the other benchmarks import them from here)
    add_json_option,
    percentile,
    save_results,
    throwaway_postgresql,
)
from flask_migrate import upgrade  # noqa: E402
from sqlalchemy import func, insert, select, text  # noqa: E402

from app import create_app  # noqa: E402
from billing.models import Customer, CustomerMetadata, IntegrationCustomer  # noqa: E402
from billing.serializers import serialize_customer  # noqa: E402
from billing.services.customers import CustomerFilters, list_customers  # noqa: E402
from billing.services.organizations import create_organization  # noqa: E402
from billing.services.search import (  # noqa: E402
    build_search_text,
    normalize_text,
    search_fragments,
)
from extensions import db, set_write_intent  # noqa: E402

SELECTIVE_MAX = 1000
BROAD_MIN_SHARE = 0.10
TARGET_P95_MS = {"selective": 10.0, "broad": 100.0}
BATCH = 5000

# ---------------------------------------------------------------------------------------------
# Synthetic but realistic customers


def _words(text: str) -> list[str]:
    return text.split()


FIRST_NAMES = _words(
    "Anna James Maria John Sofia David Emma Michael Olivia Daniel Léa Lucas Chloé Hugo Zoë "
    "Noah Mia Liam Ava Ethan Isabella Mateo Camila Sebastián Lucía Diego Valentina Pablo Elena "
    "Jonas Lena Felix Laura Paul Hannah Leon Julia Max Marie Ben Sara Luca Giulia Marco Chiara "
    "Matteo Francesca Lars Ingrid Sven Astrid Björn Freya Oskar Maja Piotr Agnieszka Łukasz "
    "Zofia Tomasz Kasia Ahmed Fatima Omar Aisha Yusuf Leila Hiroshi Yuki Kenji Aiko Wei Mei "
    "Jun Hana Raj Priya Arjun Ananya Vikram Deepa Kwame Amara Kofi Nia Tunde Zainab Carlos "
    "Ana Miguel Beatriz João Inês Rafael Mariana Pierre Amélie François Céline Jérôme Hélène "
    "Renée Søren Ødegaard Åsa Jürgen Jörg Müge Çağla Ștefan Iñaki Nuño"
)
LAST_NAMES = _words(
    "Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez Hernandez Lopez "
    "Gonzalez Wilson Anderson Thomas Taylor Moore Jackson Martin Lee Perez Thompson White Harris "
    "Sanchez Clark Ramirez Lewis Robinson Walker Young Allen King Wright Scott Torres Nguyen Hill "
    "Flores Green Adams Nelson Baker Hall Rivera Campbell Mitchell Carter Roberts Müller Schmidt "
    "Schneider Fischer Weber Meyer Wagner Becker Schulz Hoffmann Dubois Durand Lefèvre Moreau "
    "Laurent Girard Bonnet François Rossi Russo Ferrari Esposito Bianchi Romano Colombo Ricci "
    "Kowalski Nowak Wiśniewski Wójcik Kamiński Lewandowski Zieliński Szymański Andersson "
    "Johansson Karlsson Nilsson Eriksson Larsson Olsen Hansen Jensen Nielsen Sørensen Pedersen "
    "Tanaka Suzuki Takahashi Watanabe Ito Yamamoto Nakamura Kobayashi Wang Li Zhang Liu Chen "
    "Yang Huang Zhao Patel Sharma Singh Kumar Gupta Mehta Iyer Reddy Okafor Mensah Adeyemi "
    "Diallo Traoré Silva Santos Oliveira Souza Costa Pereira Almeida Ferreira Gómez Díaz Núñez "
    "Jiménez Álvarez Muñoz Peña Castro Ortiz Yılmaz Kaya Demir Şahin Çelik O'Brien O'Connor "
    "McCarthy MacDonald Vandenberg DeVries Janssen"
)
BRAND_HEADS = _words(
    "acme glob ini umbr hoo vand sta wayn nim vor tex zen lum quan sol terr aer nov ard bel "
    "cor dyn ele fer gal hel ion jet kel lyn mar nex orb pix qui ros syn tri ult vel wex xan "
    "yor zyl bri cla dra fla gra pla spr str"
)
BRAND_MIDS = _words("a e i o u ar en ix on um el is or an ex al in us er ol")
BRAND_TAILS = _words("tech ly io corp labs soft ware works net base hub form scale wise stack")
INDUSTRIES = _words(
    "Logistics Analytics Foods Systems Consulting Media Health Energy Robotics Finance Retail "
    "Studios Networks Partners Outdoors Pharma Motors Travel Security Interiors"
)
LEGAL_FORMS = ["GmbH", "Ltd", "SAS", "Inc.", "LLC", "S.r.l.", "B.V.", "AB", "Oy", "S.A."]
FREE_MAIL = ["gmail.com"] * 12 + ["outlook.com"] * 3 + ["yahoo.com"] * 2 + ["hotmail.fr", "gmx.de"]
TIERS = ["bronze", "silver", "silver", "gold", "gold", "gold", "platinum"]
SEGMENTS = ["smb", "smb", "smb", "mid-market", "mid-market", "enterprise"]
ACCOUNT_MANAGERS = [
    f"{first} {last}" for first, last in zip(FIRST_NAMES[::3], LAST_NAMES[::4], strict=False)
]
CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def _ulid(rng: random.Random, at: datetime) -> str:
    value = (int(at.timestamp() * 1000) << 80) | rng.getrandbits(80)
    return "".join(CROCKFORD[(value >> shift) & 31] for shift in range(125, -1, -5))


def _token(rng: random.Random, alphabet: str, length: int) -> str:
    return "".join(rng.choice(alphabet) for _ in range(length))


def _slug(value: str) -> str:
    return "".join(ch for ch in normalize_text(value) if ch.isascii() and ch.isalnum())


@dataclass
class Seeded:
    """One generated customer: its table rows and the fields queries are drawn from."""

    row: dict[str, Any]
    metadata: list[dict[str, Any]] = field(default_factory=list)
    integrations: list[dict[str, Any]] = field(default_factory=list)


def fake_customer(
    rng: random.Random, customer_id: int, organization_id: int, sequence: int, at: datetime
) -> Seeded:
    first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
    company = rng.random() < 0.6
    if company:
        brand = (rng.choice(BRAND_HEADS) + rng.choice(BRAND_MIDS)).capitalize()
        if rng.random() < 0.5:
            brand += rng.choice(BRAND_TAILS)
        name = f"{brand} {rng.choice(INDUSTRIES)}"
        legal_name = f"{name} {rng.choice(LEGAL_FORMS)}"
        domain = f"{_slug(brand)}.{rng.choice(['com', 'io', 'de', 'fr', 'co.uk'])}"
        if rng.random() < 0.25:
            domain = rng.choice(FREE_MAIL)  # small businesses bill to a free mailbox
        local = "billing" if rng.random() < 0.4 else f"{_slug(first)}.{_slug(last)}"
    else:
        name, legal_name = f"{first} {last}", None
        domain = rng.choice(FREE_MAIL) if rng.random() < 0.85 else "example.org"
        local = f"{_slug(first)}.{_slug(last)}{rng.randrange(100)}"
    external_id = (
        f"cus_{_ulid(rng, at)}" if rng.random() < 0.5 else f"acct-{customer_id * 7 + 100000:07d}"
    )
    row: dict[str, Any] = {
        "id": customer_id,
        "lago_id": uuid.UUID(int=rng.getrandbits(128), version=4),
        "organization_id": organization_id,
        "external_id": external_id,
        "sequential_id": sequence,
        "account_type": "customer",
        "customer_type": "company" if company else "individual",
        "name": name,
        "firstname": first,
        "lastname": last,
        "email": f"{local}@{domain}",
        "legal_name": legal_name,
        "tax_identification_number": (
            f"{rng.choice(['DE', 'FR', 'GB', 'NL'])}{rng.randrange(10**9, 10**10)}"
            if company and rng.random() < 0.5
            else None
        ),
        "country": rng.choice(["US", "DE", "FR", "GB", "NL", "IT", "ES", "SE", "PL", "JP"]),
        "currency": rng.choice(["USD", "EUR", "EUR", "GBP"]),
        "finalize_zero_amount_invoice": "inherit",
        "skip_invoice_custom_sections": False,
        "external_salesforce_id": (
            f"001{rng.choice(['5g', '8d', '4x'])}0000{_token(rng, BASE62, 9)}"
            if rng.random() < 0.4
            else None
        ),
        "payment_provider": "stripe" if rng.random() < 0.5 else None,
        "provider_customer_id": None,
        "created_at": at,
        "updated_at": at,
        "deleted_at": at + timedelta(days=30) if rng.random() < 0.02 else None,
    }
    if row["payment_provider"]:
        row["provider_customer_id"] = f"cus_{_token(rng, BASE62, 14)}"
    seeded = Seeded(row)
    metadata = {}
    if rng.random() < 0.7:
        metadata["tier"] = rng.choice(TIERS)
    if rng.random() < 0.5:
        metadata["segment"] = rng.choice(SEGMENTS)
    if rng.random() < 0.3:
        metadata["account_manager"] = rng.choice(ACCOUNT_MANAGERS)
    if rng.random() < 0.3:
        metadata["contract"] = f"ctr-{at.year}-{customer_id:06d}"
    seeded.metadata = [
        {"key": k, "value": v, "display_in_invoice": False, "created_at": at}
        for k, v in metadata.items()
    ]
    if rng.random() < 0.25:
        seeded.integrations.append(
            {"integration_type": "netsuite", "external_customer_id": f"ns-{customer_id + 400000}"}
        )
    if rng.random() < 0.15:
        seeded.integrations.append(
            {"integration_type": "hubspot", "external_customer_id": str(rng.randrange(10**9))}
        )
    for item in seeded.integrations:
        item.update(integration_code=item["integration_type"], sync_with_provider=False)
        item["created_at"] = at
    # The very function the upsert service uses, over a lightweight stand-in of the model.
    row["search_text"] = build_search_text(
        SimpleNamespace(  # type: ignore[arg-type]
            **{k: row.get(k) for k in ("name", "firstname", "lastname", "legal_name", "email")},
            external_id=row["external_id"],
            tax_identification_number=row["tax_identification_number"],
            external_salesforce_id=row["external_salesforce_id"],
            provider_customer_id=row["provider_customer_id"],
            metadata_items=[SimpleNamespace(value=m["value"]) for m in seeded.metadata],
            integration_customers=[
                SimpleNamespace(external_customer_id=i["external_customer_id"])
                for i in seeded.integrations
            ],
        )
    )
    return seeded


def seed(count: int, other_count: int, rng: random.Random) -> tuple[int, list[Seeded]]:
    """Insert the customers in big core batches; returns the benchmarked organization's id and
    a sample of its live customers to draw queries from."""
    organization = create_organization("Benchmark Org")
    other = create_organization("Other Org")
    db.session.commit()
    start = datetime(2023, 1, 1, tzinfo=UTC)
    span = (datetime(2026, 1, 1, tzinfo=UTC) - start).total_seconds()
    total = count + other_count
    sample: list[Seeded] = []
    sequences = {organization.id: 0, other.id: 0}
    customers, metadata, integrations = [], [], []
    for customer_id in range(1, total + 1):
        # Creation time grows with the id, as it does in real life; organizations interleave.
        at = start + timedelta(seconds=span * customer_id / total + rng.random())
        org_id = other.id if rng.random() < other_count / total else organization.id
        sequences[org_id] += 1
        seeded = fake_customer(rng, customer_id, org_id, sequences[org_id], at)
        customers.append(seeded.row)
        for item in seeded.metadata:
            metadata.append({**item, "customer_id": customer_id, "lago_id": uuid.uuid4()})
        for item in seeded.integrations:
            integrations.append({**item, "customer_id": customer_id, "lago_id": uuid.uuid4()})
        if org_id == organization.id and seeded.row["deleted_at"] is None and rng.random() < 0.05:
            sample.append(seeded)
        if len(customers) >= BATCH or customer_id == total:
            db.session.execute(insert(Customer.__table__), customers)
            if metadata:
                db.session.execute(insert(CustomerMetadata.__table__), metadata)
            if integrations:
                db.session.execute(insert(IntegrationCustomer.__table__), integrations)
            db.session.commit()
            customers, metadata, integrations = [], [], []
    organization.customers_sequence = sequences[organization.id]
    other.customers_sequence = sequences[other.id]
    if db.engine.dialect.name == "postgresql":
        for table in ("customers", "customer_metadata", "integration_customers"):
            db.session.execute(
                text(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"(SELECT max(id) FROM {table}))"
                )
            )
    db.session.commit()
    return organization.id, sample


def maintain() -> None:
    """What a production database has had time to do. PostgreSQL: autovacuum's statistics and
    visibility map. SQLite does nothing by itself: no ANALYZE statistics, and the FTS5 index
    keeps the segments its automatic merges left (no 'optimize')."""
    if db.engine.dialect.name == "postgresql":
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("VACUUM ANALYZE"))


# ---------------------------------------------------------------------------------------------
# The query mix: what support agents type, drawn from the seeded data


def _fragment(rng: random.Random, value: str, length: int) -> str:
    start = rng.randrange(max(1, len(value) - length + 1))
    return value[start : start + length]


def query_mix(rng: random.Random, sample: list[Seeded], per_kind: int) -> list[tuple[str, str]]:
    """(kind, term) pairs."""
    queries: list[tuple[str, str]] = []

    def pick() -> dict[str, Any]:
        return rng.choice(sample).row

    def pick_with(predicate: Callable[[Seeded], bool]) -> Seeded:
        return rng.choice([s for s in sample if predicate(s)])

    for _ in range(per_kind):
        row = pick()
        queries.append(("name prefix", row["name"].split()[0][: rng.randint(4, 7)]))
        queries.append(("full name", f"{row['firstname']} {row['lastname']}"))
        queries.append(("first name + initial", f"{row['firstname']} {row['lastname'][:1]}"))
        legal = pick_with(lambda s: s.row["legal_name"] is not None).row["legal_name"].split()
        queries.append(("company + legal form", f"{legal[0]} {legal[-1]}"))
        queries.append(("email fragment", row["email"].split("@")[0][-rng.randint(6, 10) :]))
        queries.append(("email", pick()["email"]))
        queries.append(("external id fragment", _fragment(rng, pick()["external_id"], 8)))
        crm = pick_with(lambda s: s.row["external_salesforce_id"] is not None)
        queries.append(("salesforce id", crm.row["external_salesforce_id"]))
        linked = pick_with(lambda s: bool(s.integrations))
        queries.append(("integration id", linked.integrations[0]["external_customer_id"]))
        contract = pick_with(lambda s: any(m["key"] == "contract" for m in s.metadata))
        value = next(m["value"] for m in contract.metadata if m["key"] == "contract")
        queries.append(("metadata value", value))
    # Broad terms: a common mail domain, metadata values most customers share, id prefixes and
    # a single letter (typed before the rest of a name).
    for term in (
        "gmail",
        "gmail.com",
        "gold",
        "silver",
        "enterprise",
        "smb",
        "cus_",
        "acct",
        ".com",
        "a",
        "m",
        "s",
        "gold gmail",
        "jo",
        "ma",
    ):
        queries.append(("broad term", term))
    return queries


# ---------------------------------------------------------------------------------------------
# Timing


def baseline_statement(dialect: str, term: str) -> tuple[str, dict[str, str]] | None:
    """The bare index query for `term`, counting its matches: the FTS5 MATCH on SQLite, the
    pg_trgm LIKEs on PostgreSQL (no organization, no ordering, no rows loaded)."""
    fragments = search_fragments(term)
    if not fragments:
        return None
    if dialect == "sqlite":
        query = " AND ".join('"' + f.replace('"', '""') + '"' for f in fragments)
        sql = "SELECT count(*) FROM customer_search WHERE customer_search MATCH :q"
        return sql, {"q": query}
    params = {}
    for n, fragment in enumerate(fragments):
        escaped = fragment.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        params[f"p{n}"] = f"%{escaped}%"
    likes = " AND ".join(f"search_text LIKE :p{n}" for n in range(len(fragments)))
    return f"SELECT count(*) FROM customers WHERE deleted_at IS NULL AND {likes}", params


@dataclass
class Timing:
    kind: str
    term: str
    hits: int
    service_ms: list[float] = field(default_factory=list)
    #: the service, then the serializer on every listed customer (what the API's list does)
    serialized_ms: list[float] = field(default_factory=list)
    baseline_ms: list[float] = field(default_factory=list)


def time_queries(
    organization_id: int, queries: list[tuple[str, str]], repeat: int
) -> tuple[list[Timing], int]:
    from billing.models import Organization

    dialect = db.engine.dialect.name
    set_write_intent(False)  # read-only, like a GET request
    live = db.session.scalar(
        select(func.count())
        .select_from(Customer)
        .where(Customer.organization_id == organization_id, Customer.deleted_at.is_(None))
    )
    db.session.remove()
    timings = []
    for kind, term in queries:
        organization = db.session.get(Organization, organization_id)
        page = list_customers(organization, CustomerFilters(search_term=term), per_page=100)
        timing = Timing(kind, term, page.total_count)
        db.session.remove()
        baseline = baseline_statement(dialect, term)
        for _ in range(repeat):
            organization = db.session.get(Organization, organization_id)
            started = time.perf_counter()
            page = list_customers(organization, CustomerFilters(search_term=term), per_page=100)
            listed = time.perf_counter()
            [serialize_customer(customer) for customer in page.items]
            timing.service_ms.append((listed - started) * 1000)
            timing.serialized_ms.append((time.perf_counter() - started) * 1000)
            db.session.remove()
            if baseline is not None:
                sql, params = baseline
                started = time.perf_counter()
                db.session.execute(text(sql), params).scalar()
                timing.baseline_ms.append((time.perf_counter() - started) * 1000)
                db.session.remove()
        timings.append(timing)
    return timings, live or 0


def classify(timing: Timing, live: int) -> str:
    if timing.hits <= SELECTIVE_MAX:
        return "selective"
    if timing.hits >= BROAD_MIN_SHARE * live:
        return "broad"
    return "medium"


# ---------------------------------------------------------------------------------------------
# Backends


def run_backend(url: str, args: argparse.Namespace) -> dict[str, Any]:
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "bench"})
    with app.app_context():
        dialect = db.engine.dialect.name
        upgrade()
        rng = random.Random(args.seed)
        started = time.perf_counter()
        other = args.other_customers
        if other is None:
            other = args.customers // 10
        organization_id, sample = seed(args.customers, other, rng)
        seeded_s = time.perf_counter() - started
        started = time.perf_counter()
        maintain()
        maintain_s = time.perf_counter() - started
        print(
            f"[{dialect}] seeded {args.customers + other:,} customers in {seeded_s:.0f} s "
            f"(+ {maintain_s:.0f} s vacuum/analyze)",
            flush=True,
        )
        queries = query_mix(random.Random(args.seed + 1), sample, args.queries)
        # Time in a process that looks like a web worker rather than the seeder: the seeding
        # garbage is collected and the long-lived heap frozen (gc.freeze(), as pre-forking
        # servers do after start-up), so that no full collection of it lands in a timed query.
        del sample
        gc.collect()
        gc.freeze()
        timings, live = time_queries(organization_id, queries, args.repeat)
        version = db.session.execute(
            text("SELECT sqlite_version()" if dialect == "sqlite" else "SHOW server_version")
        ).scalar()
        db.session.remove()
        db.engine.dispose()
    return {"dialect": dialect, "version": version, "timings": timings, "live": live}


def report(result: dict[str, Any], verbose: bool) -> bool:
    """Print one backend's figures; True when the targets are met."""
    dialect, timings, live = result["dialect"], result["timings"], result["live"]
    baseline_name = "bare FTS5 query" if dialect == "sqlite" else "bare pg_trgm query"
    print(
        f"\n## {dialect} {result['version']}: {live:,} live customers in the searched "
        f"organization; baseline = {baseline_name} (count of matches)"
    )
    if verbose:
        for t in sorted(timings, key=lambda t: -statistics.median(t.service_ms)):
            base = statistics.median(t.baseline_ms) if t.baseline_ms else float("nan")
            print(
                f"  {classify(t, live):9} {t.kind:22} {t.term!r:34} {t.hits:>7} hits  "
                f"service {statistics.median(t.service_ms):7.2f} ms  "
                f"+ serializer {statistics.median(t.serialized_ms):7.2f} ms  "
                f"baseline {base:7.2f} ms"
            )
    print(
        "| class | queries | hits (median) | service p50 | service p95 | + serializer p50 / p95 "
        "| baseline p50 | baseline p95 | ratio p50 / p95 | target p95 |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    ok = True
    result["classes"] = {}
    for cls in ("selective", "medium", "broad"):
        group = [t for t in timings if classify(t, live) == cls]
        if not group:
            continue
        service = [ms for t in group for ms in t.service_ms]
        baseline = [ms for t in group for ms in t.baseline_ms]
        s50, s95 = percentile(service, 50), percentile(service, 95)
        b50, b95 = percentile(baseline, 50), percentile(baseline, 95)
        serialized = [ms for t in group for ms in t.serialized_ms]
        a50, a95 = percentile(serialized, 50), percentile(serialized, 95)
        target = TARGET_P95_MS.get(cls)
        verdict = "—" if target is None else f"< {target:.0f} ms " + ("✓" if s95 < target else "✗")
        ok = ok and (target is None or s95 < target)
        hits = statistics.median(t.hits for t in group)
        result["classes"][cls] = {
            "queries": len(group), "hits": hits, "service_p50_ms": s50, "service_p95_ms": s95,
            "serialized_p50_ms": a50, "serialized_p95_ms": a95, "baseline_p50_ms": b50,
            "baseline_p95_ms": b95, "target_p95_ms": target,
            "met": None if target is None else s95 < target,
        }  # fmt: skip
        print(
            f"| {cls} | {len(group)} | {hits:,.0f} | {s50:.1f} ms | {s95:.1f} ms "
            f"| {a50:.1f} / {a95:.1f} ms | {b50:.1f} ms | {b95:.1f} ms "
            f"| {s50 / b50:.1f}× / {s95 / b95:.1f}× | {verdict} |"
        )
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--customers",
        type=int,
        default=200_000,
        help="customers of the searched organization (default 200000)",
    )
    parser.add_argument(
        "--other-customers",
        type=int,
        default=None,
        help="customers of a second organization (default 10%% of --customers)",
    )
    parser.add_argument(
        "--database-url",
        help="PostgreSQL server URL: also run there, in a "
        "throwaway database created and dropped on that server",
    )
    parser.add_argument("--sqlite-path", help="SQLite file (default: a temporary file)")
    parser.add_argument("--no-sqlite", action="store_true", help="skip the SQLite run")
    parser.add_argument(
        "--queries", type=int, default=8, help="draws of each kind of selective query (default 8)"
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=5,
        help="timed runs of each query, after one warm-up run (default 5)",
    )
    parser.add_argument(
        "--keep",
        action="store_true",
        help="keep the PostgreSQL database (to EXPLAIN queries afterwards)",
    )
    parser.add_argument("--seed", type=int, default=42, help="random seed")
    parser.add_argument("-v", "--verbose", action="store_true", help="one line per query")
    add_json_option(parser)
    args = parser.parse_args()

    results = []
    if not args.no_sqlite:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(args.sqlite_path or Path(tmp) / "bench.db")
            if path.exists():
                sys.exit(f"{path} exists; give a new file")
            results.append(run_backend(f"sqlite:///{path}", args))
    if args.database_url:
        with throwaway_postgresql(args.database_url, args.keep) as url:
            results.append(run_backend(url, args))
    ok = all([report(result, args.verbose) for result in results])
    save_results("customer_search", args, ok, {
        r["dialect"]: {"version": r["version"], "live": r["live"], "classes": r["classes"],
                       "customers": args.customers}
        for r in results
    })  # fmt: skip
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
