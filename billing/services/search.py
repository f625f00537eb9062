"""Customer search: one service for the API and the console.

Every customer keeps a normalized `search_text` (name, first and last name, legal name, e-mail,
external id, tax id, metadata values, CRM and payment-provider ids). The database indexes it:

* SQLite: two external-content FTS5 tables kept in step by triggers (see the migration):
  `customer_search` with the trigram tokenizer answers substrings of 3+ characters, and
  `customer_search_words` (unicode61 words, prefix indexes of 1 and 2 characters) answers
  shorter terms as word prefixes.
* PostgreSQL: a pg_trgm GIN index on `search_text` answers substrings through LIKE, and a GIN
  index on the words of `search_text` answers short terms as prefixes.

A search term is split on white space; every word must match (so "acme john" finds John at Acme).
No query uses a leading-wildcard LIKE scan.
"""

from __future__ import annotations

import re
import unicodedata

from sqlalchemy import ColumnElement, Integer, and_, column, select, text

from billing.models import Customer

#: words shorter than this are matched as word prefixes instead of substrings
TRIGRAM_MIN = 3
MAX_WORDS = 8

_WORD_CHARS = re.compile(r"[^\w]+", re.UNICODE)


def normalize_text(value: str) -> str:
    """Case- and accent-insensitive form, applied alike to indexed text and to queries."""
    decomposed = unicodedata.normalize("NFKD", value)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).casefold()


def build_search_text(customer: Customer) -> str:
    """The text a customer is found by; one field a line so no match spans two fields."""
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
    return "\n".join(normalize_text(v) for v in values if v)


def search_words(term: str) -> list[str]:
    """The words of a search term, normalized, at most MAX_WORDS of them."""
    return [w for w in normalize_text(term).split() if w][:MAX_WORDS]


def _fts_phrase(word: str) -> str:
    return '"' + word.replace('"', '""') + '"'


def _like_pattern(word: str) -> str:
    return "%" + word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def matching_customers(dialect: str, term: str) -> ColumnElement[bool] | None:
    """A condition on `Customer` that holds for customers matching every word of `term`.

    Returns None when the term has no searchable word (blank, or punctuation only).
    """
    words = search_words(term)
    long_words = [w for w in words if len(w) >= TRIGRAM_MIN]
    short_words = [
        prefix for w in words if len(w) < TRIGRAM_MIN for prefix in _WORD_CHARS.split(w) if prefix
    ]
    if not long_words and not short_words:
        return None
    if dialect == "sqlite":
        return _sqlite_condition(long_words, short_words)
    return _postgresql_condition(long_words, short_words)


def _sqlite_condition(long_words: list[str], short_words: list[str]) -> ColumnElement[bool]:
    conditions = []
    if long_words:
        trigram = (
            select(column("rowid", Integer))
            .select_from(text("customer_search"))
            .where(
                text("customer_search MATCH :trigram_query").bindparams(
                    trigram_query=" AND ".join(_fts_phrase(w) for w in long_words)
                )
            )
        )
        conditions.append(Customer.id.in_(trigram.scalar_subquery()))
    if short_words:
        prefixes = (
            select(column("rowid", Integer))
            .select_from(text("customer_search_words"))
            .where(
                text("customer_search_words MATCH :prefix_query").bindparams(
                    prefix_query=" AND ".join(_fts_phrase(w) + "*" for w in short_words)
                )
            )
        )
        conditions.append(Customer.id.in_(prefixes.scalar_subquery()))
    return and_(*conditions)


# The same expression as the index `ix_customers_search_words` of the migration, spelled with
# literals so that PostgreSQL recognises it.
PG_WORDS_TSVECTOR = (
    "to_tsvector('simple'::regconfig, "
    "regexp_replace(customers.search_text, '[^[:alnum:]]+', ' ', 'g'))"
)


def _postgresql_condition(long_words: list[str], short_words: list[str]) -> ColumnElement[bool]:
    conditions: list[ColumnElement[bool]] = [
        Customer.search_text.like(_like_pattern(w), escape="\\") for w in long_words
    ]
    if short_words:
        query = " & ".join("'" + w.replace("'", "''") + "':*" for w in short_words)
        conditions.append(
            text(
                f"{PG_WORDS_TSVECTOR} @@ to_tsquery('simple'::regconfig, :prefix_query)"
            ).bindparams(prefix_query=query)
        )
    return and_(*conditions)
