"""Merging the documents of one PATH into one desired state; a name defined twice is an error."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..errors import Diagnostic
from ..model import Location
from .resolve import ResolvedDocument
from .yaml_loader import Path


@dataclass(slots=True)
class Entry:
    """One named entry (provider, connector, state block, moved item) and the document it came from."""

    name: str
    body: Any
    source: ResolvedDocument
    path: Path

    def location(self, sub: Path = (), *, key: bool = False) -> Location:
        return self.source.doc.location(self.path + tuple(sub), key=key)

    def is_unknown(self, sub: Path = ()) -> bool:
        return self.source.is_unknown(self.path + tuple(sub))


@dataclass(slots=True)
class Merged:
    providers: dict[str, Entry] = field(default_factory=dict)
    connectors: dict[str, Entry] = field(default_factory=dict)
    state: Entry | None = None
    moved: list[Entry] = field(default_factory=list)


def merge(documents: list[ResolvedDocument]) -> tuple[Merged, list[Diagnostic]]:
    merged = Merged()
    diagnostics: list[Diagnostic] = []
    for rdoc in documents:
        view = rdoc.view
        for section, table, what in (("providers", merged.providers, "provider"),
                                     ("connectors", merged.connectors, "connector")):
            entries = view.get(section)
            if not isinstance(entries, dict):
                continue
            for name, body in entries.items():
                entry = Entry(name, body, rdoc, (section, name))
                first = table.get(name)
                if first is not None:
                    # moved: renames connectors only; a provider is referred to by name from any file
                    advice = ("rename one (to rename a connector that exists, use a moved block)" if what == "connector"
                              else "keep one definition (every file's connectors can name it) or rename one")
                    diagnostics.append(Diagnostic(
                        f"{what} {name!r} is defined twice: here and at {first.location(key=True)}; {advice}",
                        entry.location(key=True)))
                    continue
                table[name] = entry
        if "state" in view:
            entry = Entry("state", view["state"], rdoc, ("state",))
            if merged.state is not None:
                diagnostics.append(Diagnostic(
                    f"state is configured twice: here and at {merged.state.location(key=True)}; keep one",
                    entry.location(key=True)))
            else:
                merged.state = entry
        moved = view.get("moved")
        if isinstance(moved, list):
            merged.moved += [Entry(str(i), item, rdoc, ("moved", i)) for i, item in enumerate(moved)]
    return merged, diagnostics
