"""Identifiers: Lago-style UUIDs and generated, sortable external ids."""

from __future__ import annotations

import uuid

from ulid import ULID


def new_lago_id() -> uuid.UUID:
    return uuid.uuid4()


def generate_external_id(prefix: str = "cus") -> str:
    """A unique id that sorts by creation time, e.g. `cus_01JD3X9Q7B6W2M5Y4H8K0N1PZR`."""
    return f"{prefix}_{ULID()}"
