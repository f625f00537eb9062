"""Pages of results and Lago's pagination meta, shared by every list."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass
class Page(Generic[T]):
    items: list[T]
    total_count: int
    page: int
    per_page: int

    @property
    def total_pages(self) -> int:
        return -(-self.total_count // self.per_page) if self.per_page else 0

    def meta(self) -> dict[str, int | None]:
        """Lago's pagination meta; an empty result has current_page 0."""
        if self.total_count == 0:
            return {
                "current_page": 0,
                "next_page": None,
                "prev_page": None,
                "total_pages": 0,
                "total_count": 0,
            }
        return {
            "current_page": self.page,
            "next_page": self.page + 1 if self.page < self.total_pages else None,
            "prev_page": self.page - 1 if self.page > 1 else None,
            "total_pages": self.total_pages,
            "total_count": self.total_count,
        }
