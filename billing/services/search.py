"""Customer search: one service for the API and the console.

Every customer keeps a normalized `search_text` (casefolded, accents stripped): one line per
field (name, first and last name, legal name, e-mail, external id, tax id, CRM and
payment-provider ids, metadata values), then a last line of *word starts* — the first one or
two characters of every word, each after two spaces (`"  ac  jo  gm"`).

A search term is split on white space and every word must match (so "acme john" finds John at
Acme). A word of 3+ characters matches as a substring of any field; a shorter one matches the
start of a word (words are runs of letters and digits), which is the substring `"  j"` or `" jo"`
of search_text thanks to the word-starts line. So every word of a term becomes a substring of
3+ characters, which one trigram index answers on either database:

* SQLite: the contentless FTS5 table `customer_search` (trigram tokenizer), kept by triggers
  (see the migration). Its rowid is `organization_id << 40 | customer id`, so each
  organization's customers form one rowid range: an organization's matches are counted in the
  index alone, without visiting the customers table.
* PostgreSQL: a pg_trgm GIN index on `search_text` answers `LIKE '%…%'`.

Only live customers are indexed (on PostgreSQL, the index is partial), and a search finds live
customers only; the console's list of deleted customers searches them apart, with a LIKE on
each of the organization's deleted customers. No query scans the table with a leading-wildcard
LIKE.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    Select,
    and_,
    false,
    func,
    literal_column,
    or_,
    select,
    text,
)

from billing.models import Customer

#: words shorter than this match word starts instead of substrings
TRIGRAM_MIN = 3
#: further words of a search term are ignored
MAX_WORDS = 8
#: SQLite index rowid = organization id << ORG_ROWID_SHIFT | customer id (the migration's
#: triggers spell the same number)
ORG_ROWID_SHIFT = 40

#: a word: a run of letters and digits
_WORD = re.compile(r"[^\W_]+")


def normalize_text(value: str) -> str:
    """Case- and accent-insensitive form, applied alike to indexed text and to queries."""
    decomposed = unicodedata.normalize("NFKD", value)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).casefold()


def build_search_text(customer: Customer) -> str:
    """The text a customer is found by: one field a line so no match spans two fields, then
    the word starts that short search words are matched against."""
    values: list[str | None] = [
        customer.name,
        customer.firstname,
        customer.lastname,
        customer.legal_name,
        customer.email,
        customer.external_id,
        customer.tax_identification_number,
        customer.external_salesforce_id,
        customer.provider_customer_id,
    ]
    values += [m.value for m in customer.metadata_items]
    values += [i.external_customer_id for i in customer.integration_customers]
    fields = "\n".join(normalize_text(v) for v in values if v)
    starts = sorted({word[: TRIGRAM_MIN - 1] for word in _WORD.findall(fields)})
    return fields + "\n" + "".join("  " + start for start in starts)


def _word_start(prefix: str) -> str:
    # The substring of 3 characters that finds words starting with a prefix of one or two: the
    # word-starts line puts two spaces before each word's first two characters ("  jo"), so
    # "  j" finds the words starting with j and " jo" those starting with jo. Elsewhere a space
    # also precedes a word start only.
    return ("  " + prefix)[-TRIGRAM_MIN:]


def search_fragments(term: str) -> list[str]:
    """The substrings of search_text that a customer matching `term` contains, 3+ characters
    each. Empty when the term has nothing to search for (blank, or 1-2 punctuation marks)."""
    fragments: list[str] = []
    for word in normalize_text(term).split()[:MAX_WORDS]:
        if len(word) >= TRIGRAM_MIN:
            fragments.append(word)
        else:
            # "o'" is the word start "o"; punctuation alone starts no word and is dropped.
            fragments += [_word_start(prefix) for prefix in _WORD.findall(word)]
    return list(dict.fromkeys(fragments))


def organization_rowids(organization_id: int) -> tuple[int, int]:
    """The first and last rowid of an organization's customers in the SQLite index."""
    low = organization_id << ORG_ROWID_SHIFT
    return low, low + (1 << ORG_ROWID_SHIFT) - 1


def matching_customers(
    dialect: str,
    organization_id: int,
    term: str,
    *,
    deleted: bool = False,
    filter_only: bool = False,
    at_most: int | None = None,
) -> ColumnElement[bool]:
    """A condition on `Customer`: the customer matches every word of `term`.

    A term without anything to search for matches nobody (a lone "%" is not a wildcard).
    Deleted customers never match, unless `deleted`: the condition then matches deleted
    customers only (the console's list of deleted customers). The search indexes hold live
    customers only, so that is a LIKE on each deleted customer, which callers restrict to the
    organization's (index ix_customers_search_deleted). The live condition restricts the
    organization on SQLite only (through the index's rowid range): callers always restrict it.

    On SQLite the matches found in the index drive the query: customers are looked up by id.
    With `filter_only`, each customer the query reads is checked against the matches instead,
    for a query that walks customers in another order and stops early (a page of a broad
    search, newest first). With `at_most`, SQLite takes at most that many matches from the
    index: a cheap way to learn whether a search matches few customers, exact when the search
    is the only filter (each match in the index is then one matching customer).
    """
    fragments = search_fragments(term)
    if not fragments:
        return false()
    likes = [Customer.search_text.like(_like_pattern(f), escape="\\") for f in fragments]
    if deleted:
        return and_(Customer.deleted_at.is_not(None), *likes)
    if dialect == "sqlite":
        low, _high = organization_rowids(organization_id)
        rowid = literal_column("customer_search.rowid", Integer)
        if filter_only:
            # `customers.id + low` is an expression SQLite cannot look customers up by.
            return (Customer.id + low).in_(_sqlite_matches(organization_id, fragments, rowid))
        return Customer.id.in_(
            _sqlite_matches(organization_id, fragments, rowid - low).limit(at_most)
        )
    # deleted_at IS NULL: deleted customers are never found (as on SQLite), and the partial
    # trigram index applies.
    return and_(Customer.deleted_at.is_(None), *likes)


def count_matches_sqlite(organization_id: int, term: str) -> Select[Any]:
    """SQLite: the number of the organization's live customers matching `term`, counted in
    the index alone (the triggers index live customers only)."""
    fragments = search_fragments(term)
    if not fragments:
        return select(func.count()).where(false())
    return _sqlite_matches(organization_id, fragments, func.count())


def _sqlite_matches(
    organization_id: int, fragments: list[str], selected: ColumnElement[Any]
) -> Select[Any]:
    low, high = organization_rowids(organization_id)
    # Every fragment is a quoted FTS5 phrase (quotes doubled), so that AND, NEAR, *, ( and :
    # in a term are plain characters; with the trigram tokenizer a phrase is a substring.
    query = " AND ".join('"' + f.replace('"', '""') + '"' for f in fragments)
    return (
        select(selected)
        .select_from(text("customer_search"))
        .where(
            text("customer_search MATCH :search_query").bindparams(search_query=query),
            text("customer_search.rowid BETWEEN :search_low AND :search_high").bindparams(
                search_low=low, search_high=high
            ),
        )
    )


def _like_pattern(fragment: str) -> str:
    escaped = fragment.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return "%" + escaped + "%"


def document_matches(
    organization_id: int, number: Any, customer_id: Any, term: str
) -> ColumnElement[bool]:
    """A document (invoice, credit note) whose `number` column, or whose customer's name,
    external id or e-mail, contains `term`, case-insensitively (the lists' `search_term`)."""
    pattern = f"%{term.lower()}%"
    return or_(
        func.lower(number).like(pattern),
        customer_id.in_(
            select(Customer.id).where(
                Customer.organization_id == organization_id,
                or_(
                    func.lower(Customer.name).like(pattern),
                    func.lower(Customer.external_id).like(pattern),
                    func.lower(Customer.email).like(pattern),
                ),
            )
        ),
    )
