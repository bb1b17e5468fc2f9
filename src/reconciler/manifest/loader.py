"""``load(PATH)``: manifests on disk -> a validated, typed :class:`~reconciler.model.Manifest`.

Every stage runs even after an earlier one found problems, so one run reports every mistake; the
typed model is built only when there are none. Nothing here touches the network.
"""
from __future__ import annotations

import os
from typing import Callable, Mapping

from .._gc import paused
from ..errors import Diagnostic, ManifestError
from ..model import Location, Manifest
from . import semantic
from .build import build
from .collect import IGNORE_FILE, manifest_files
from .merge import Entry, merge
from .resolve import ResolvedDocument, resolve_document
from .schema import compile_document_validator, plainly_valid_connectors, validate_connector, validate_document
from .parallel import Beside, load_files


def load(path: str | os.PathLike[str], *, env: Mapping[str, str] | None = None, resolve_env: bool = True,
         beside: Beside | None = None, meanwhile: Callable[[], None] | None = None) -> Manifest:
    """Load, validate and resolve the manifests at PATH (a file or a directory tree).

    ``env`` defaults to ``os.environ``. With ``resolve_env=False`` (``validate --no-env``) the
    environment is not read: references are checked for syntax only, and secrets hold an empty
    placeholder. Raises :class:`ManifestError` carrying every diagnostic found. ``beside``: a job
    for a manifest reader process to run while the manifests are checked (``parallel.Beside``);
    ``meanwhile``: work for this process while reader processes parse (``parallel.load_files``).
    """
    with paused():
        return _load(path, env, resolve_env, beside, meanwhile)


def _load(path: str | os.PathLike[str], env: Mapping[str, str] | None, resolve_env: bool,
          beside: Beside | None, meanwhile: Callable[[], None] | None) -> Manifest:
    root = os.fspath(path)
    environment: Mapping[str, str] = os.environ if env is None else env
    files, diagnostics = manifest_files(root)
    documents: list[ResolvedDocument] = []
    for file, (doc, problems) in zip(files, load_files(files, beside=beside, meanwhile=_and_compile(meanwhile))):
        diagnostics += problems
        if doc is not None and not _looks_like_a_manifest(doc.data) and file != root:
            diagnostics.append(Diagnostic(
                f"not a manifest (no version, providers or connectors key): to keep it beside the manifests, "
                f"list it in {os.path.join(root, IGNORE_FILE)} (gitignore syntax, e.g. {os.path.relpath(file, root)})",
                Location(file, 1, 1)))
            continue
        if doc is not None:
            rdoc = resolve_document(doc, environment, resolve_env)
            diagnostics += rdoc.diagnostics
            documents.append(rdoc)
    for rdoc in documents:
        for problem in validate_document(rdoc.view):
            if not rdoc.is_unknown(problem.path):
                diagnostics.append(Diagnostic(problem.message, rdoc.doc.location(problem.path, key=problem.at_key)))
    merged, problems = merge(documents)
    diagnostics += problems
    by_kind: dict[str | None, list[Entry]] = {}
    for entry in merged.connectors.values():
        by_kind.setdefault(semantic.provider_type(merged, entry), []).append(entry)
    for kind, entries in by_kind.items():
        if plainly_valid_connectors({e.name: e.body for e in entries}, kind):
            continue  # the common case: no connector of this type has a problem
        for entry in entries:
            for problem in validate_connector(entry.name, entry.body, kind):
                if not entry.source.is_unknown(problem.path):
                    diagnostics.append(Diagnostic(problem.message, entry.source.doc.location(problem.path, key=problem.at_key)))
    diagnostics += semantic.check(merged, root)
    if diagnostics:
        raise ManifestError(_unique(diagnostics))
    return build(merged, root, files)


def _and_compile(meanwhile: Callable[[], None] | None) -> Callable[[], None] | None:
    """``meanwhile``, then the document pass's compiled validator (14 ms to build), while reader
    processes still parse: the document pass is the first thing done with what they return."""
    if meanwhile is None:
        return None

    def both() -> None:
        meanwhile()
        compile_document_validator()

    return both


_TOP_LEVEL = ("version", "providers", "connectors", "state", "moved")


def _looks_like_a_manifest(data: object) -> bool:
    return not isinstance(data, dict) or any(k in data for k in _TOP_LEVEL)


def _unique(diagnostics: list[Diagnostic]) -> list[Diagnostic]:
    return list(dict.fromkeys(diagnostics))
