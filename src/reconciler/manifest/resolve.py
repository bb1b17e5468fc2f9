"""Resolving ``${VAR}`` references in one document, keeping secrets apart from everything else.

The result is a *view* of the document for validation: non-secret strings are resolved (a value
that cannot be known, under ``--no-env``, is recorded so that checks on it are skipped), while
secret positions keep the reference as written, which is what the schema checks there. Resolved
secret values go to a separate map and are only ever wrapped in :class:`Secret`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from .. import redact
from ..errors import Diagnostic
from .schema import is_sensitive
from .variables import VarSyntaxError, parse, resolve
from .yaml_loader import Document, Path

# free text where a line break from the environment is legitimate
_MULTILINE_OK = ("scope", "description")


@dataclass(slots=True)
class ResolvedDocument:
    doc: Document
    view: Any
    unknown: set[Path] = field(default_factory=set)
    secrets: dict[Path, tuple[str, str | None]] = field(default_factory=dict)  # path -> (value, variable)
    diagnostics: list[Diagnostic] = field(default_factory=list)

    def is_unknown(self, path: Path) -> bool:
        # asked of several fields of every connector; unknowns are rare (--no-env, a reference that failed)
        return bool(self.unknown) and any(path[:i] in self.unknown for i in range(len(path) + 1))


def _weak_secret(value: str, names: str) -> str | None:
    # GitHub Actions expands a secret that does not exist to "": sending that would blank a
    # credential on the platform; and a value too short to mask would be printed in plain
    if not value.strip():
        return (f"{names} is empty; a secret must have a value (in GitHub Actions a missing or misspelt secret "
                "expands to \"\": check the workflow's env: and the repository's secrets)")
    if len(value) < redact.MIN_SECRET_LENGTH:
        return (f"{names} is {len(value)} character{'s' if len(value) != 1 else ''} long; secrets shorter than "
                f"{redact.MIN_SECRET_LENGTH} characters are refused (too short to be a real credential, and "
                "too short to mask in output without masking ordinary words)")
    return None


def resolve_document(doc: Document, env: Mapping[str, str], resolve_env: bool) -> ResolvedDocument:
    out = ResolvedDocument(doc, None)
    lookup: Mapping[str, str] = env if resolve_env else {}
    out.view = _walk(doc.data, (), out, lookup, resolve_env)
    return out


def _walk(value: Any, path: Path, out: ResolvedDocument, env: Mapping[str, str], strict: bool,
          sensitive: bool = False) -> Any:
    # A subtree with nothing to resolve is shared with the document, not copied: at 100,000
    # connectors a second tree would double the manifests' memory. Whether a position is secret
    # is settled by its first three keys (is_sensitive), so deeper positions inherit it.
    if isinstance(value, (dict, list)):
        view = None
        shallow = len(path) < 3
        for k, v in (value.items() if isinstance(value, dict) else enumerate(value)):
            child = path + (k,)
            secret = is_sensitive(child) if shallow else sensitive
            if not secret and (v.__class__ is not str or "$" not in v) and not isinstance(v, (dict, list)):
                continue  # a plain value, the commonest by far: nothing to resolve or record
            new = _walk(v, child, out, env, strict, secret)
            if new is not v:
                if view is None:
                    view = dict(value) if isinstance(value, dict) else list(value)
                view[k] = new
        return value if view is None else view
    if not isinstance(value, str):
        return value
    secret = sensitive and not (len(path) == 4 and path[3] == "type")
    if "$" not in value:
        if secret:
            out.secrets[path] = (value, None)
        return value
    try:
        parts = parse(value)
    except VarSyntaxError as exc:
        message = "invalid ${...} reference in a secret: write ${VAR} or ${VAR:?message}" if secret else str(exc)
        out.diagnostics.append(Diagnostic(message, out.doc.location(path)))
        out.unknown.add(path)
        return value
    result = resolve(parts, env, secret=secret)
    if result.unresolved:
        out.unknown.add(path)
        if strict:
            out.diagnostics += [Diagnostic(e, out.doc.location(path)) for e in result.errors]
    if secret:
        source = parts[0].name if len(parts) == 1 and not isinstance(parts[0], str) else None
        out.secrets[path] = (result.value, source)
        if strict and not result.unresolved and result.from_env:
            problem = _weak_secret(result.value, " and ".join(result.from_env))
            if problem:
                out.diagnostics.append(Diagnostic(problem, out.doc.location(path)))
        return value  # the schema checks the reference as written
    # every non-secret value, not only connector fields: a provider url such as
    # https://${AWS_SECRET_ACCESS_KEY}.evil.example is printed by the allowed-host refusal
    if result.from_env:
        for name in result.from_env:
            if not redact.is_public(name, env):
                redact.register_env(name, env[name])
    if result.from_env and ("\n" in result.value or "\r" in result.value) and not (
            len(path) > 2 and path[0] == "connectors" and path[2] in _MULTILINE_OK):
        names = ", ".join(result.from_env)
        out.diagnostics.append(Diagnostic(
            f"the value of {names} contains a line break, which is not allowed in {path[-1]}", out.doc.location(path)))
    return result.value
