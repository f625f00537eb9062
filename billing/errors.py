"""Named domain exceptions. The API turns them into Lago's error JSON; the console into messages."""

from __future__ import annotations


class DomainError(Exception):
    """Base class of every error a service raises on purpose."""


class ValidationFailed(DomainError):
    """Input was refused; `details` maps a field (or `base`) to Lago error codes."""

    def __init__(self, details: dict[str, list[str]] | dict[str, object]) -> None:
        super().__init__(f"validation failed: {details!r}")
        self.details = details


class NotFound(DomainError):
    """A record does not exist in the caller's organization; `resource` names it (`customer`)."""

    def __init__(self, resource: str) -> None:
        super().__init__(f"{resource} not found")
        self.resource = resource

    @property
    def code(self) -> str:
        return f"{self.resource}_not_found"


class NotAllowed(DomainError):
    """The action is not allowed in the record's current state (Lago's 405 with a code)."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


class Conflict(DomainError):
    """A uniqueness rule was broken; `field` and the Lago code say which."""

    def __init__(self, field: str, code: str = "value_already_exist") -> None:
        super().__init__(f"{field}: {code}")
        self.field = field
        self.code = code


class InvariantBroken(RuntimeError):
    """A state the code guarantees did not hold: a bug, never bad input (unlike `assert`,
    the check also runs under `python -O`)."""
