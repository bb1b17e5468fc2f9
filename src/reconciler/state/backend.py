"""The state backend interface: load, durable per-entry writes, and a lock per state."""
from __future__ import annotations

from abc import ABC, abstractmethod
from contextlib import AbstractContextManager

from .model import State, StateEntry


class StateBackend(ABC):
    """Every write is durable when the call returns, so a killed run loses nothing."""

    description: str  # where the state lives, for messages
    # repair commands (state list/rm/mv) load a state the checks would refuse for its meaning (two
    # entries on one live id), so that the user can remove the stale entry; structure is always checked
    lenient: bool = False

    @abstractmethod
    def load(self) -> State: ...

    @abstractmethod
    def put(self, entry: StateEntry) -> None: ...

    @abstractmethod
    def remove(self, name: str) -> None: ...

    def put_many(self, entries: list[StateEntry]) -> None:
        """File every entry under its name; backends make it one atomic write. A create-first replace
        records its replacement and its not-yet-deleted original together: a crash between two writes
        would leave the original live and owned by no entry (never deleted, a duplicate for good)."""
        for entry in entries:
            self.put(entry)

    def rename(self, old: str, entry: StateEntry) -> None:
        """File ``entry`` under its name in place of ``old``; backends make it one atomic write, so a
        crash never leaves the connector under both names (refused as two owners of one id) or neither."""
        self.put(entry)
        self.remove(old)

    @abstractmethod
    def lock(self, *, timeout: float, holder: str) -> AbstractContextManager[None]:
        """Hold the state's lock: one apply at a time. Waits up to ``timeout`` seconds, then
        raises :class:`~reconciler.errors.StateLocked` naming the holder."""

    def check_writable(self) -> None:
        """Raise :class:`~reconciler.errors.StateWriteError` when a write would fail; called before an
        apply's first platform call, so a state that cannot record a change never lets one happen."""

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
