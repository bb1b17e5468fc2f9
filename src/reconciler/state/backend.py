"""The state backend interface: load, durable per-entry writes, and a lock per state."""
from __future__ import annotations

from abc import ABC, abstractmethod
from contextlib import AbstractContextManager

from .model import State, StateEntry


class StateBackend(ABC):
    """Every write is durable when the call returns, so a killed run loses nothing."""

    description: str  # where the state lives, for messages

    @abstractmethod
    def load(self) -> State: ...

    @abstractmethod
    def put(self, entry: StateEntry) -> None: ...

    @abstractmethod
    def remove(self, name: str) -> None: ...

    @abstractmethod
    def lock(self, *, timeout: float, holder: str) -> AbstractContextManager[None]:
        """Hold the state's lock: one apply at a time. Waits up to ``timeout`` seconds, then
        raises :class:`~reconciler.errors.StateLocked` naming the holder."""

    def flush(self) -> None:
        """Compact whatever the backend journals (end of a run); optional."""

    def close(self) -> None:
        pass

    # -- day-two operations (``state push`` / ``state force-unlock``) ------------------------------
    def replace_all(self, state: State) -> None:
        """Make ``state`` the whole state, durably (``reconcile state push``; the caller holds the lock)."""
        raise NotImplementedError(f"{self.description} cannot be replaced as a whole")

    def force_unlock(self, lock_id: str) -> str:
        """Release a lock another run holds, if ``lock_id`` names it; returns the holder's description.
        Raises :class:`~reconciler.errors.ReconcileError` when the state is not locked or the id is
        another holder's."""
        raise NotImplementedError(f"{self.description} cannot be force-unlocked")
