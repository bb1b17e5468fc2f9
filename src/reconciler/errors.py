"""Errors a user can act on. The CLI prints them without a traceback and exits 1."""
from __future__ import annotations

from dataclasses import dataclass

from .model import Location


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """One problem in a manifest: where, and what to write instead."""

    message: str
    location: Location | None = None

    def __str__(self) -> str:
        return f"{self.location}: {self.message}" if self.location else self.message


class ReconcileError(Exception):
    """Base class: an error with a message fit for the user."""


class ManifestError(ReconcileError):
    """The manifests are invalid. Carries every diagnostic found, not just the first."""

    def __init__(self, diagnostics: list[Diagnostic]) -> None:
        self.diagnostics = sorted(
            diagnostics,
            key=lambda d: (d.location.file, d.location.line, d.location.column) if d.location else ("", 0, 0),
        )
        super().__init__("\n".join(str(d) for d in self.diagnostics))


class ProviderError(ReconcileError):
    """A platform refused a call (4xx other than 429), or kept failing after retries."""

    def __init__(self, message: str, *, status: int | None = None, retryable: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.retryable = retryable


class NotFound(ProviderError):
    """The platform says the object does not exist (404)."""


class OutcomeUnknown(ProviderError):
    """A non-idempotent call was sent but no answer came back: it may or may not have happened.

    The engine looks the object up before trying again, so a lost create never duplicates.
    """


class StateLocked(ReconcileError):
    """Another run holds the state lock."""


class StateWriteError(ReconcileError):
    """The state cannot be written (read-only, immutable, disk full): no platform call may follow."""


class PlanStale(ReconcileError):
    """A saved plan no longer matches the manifests or live state."""
