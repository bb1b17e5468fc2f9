"""The JSON Schema: loading it, and turning its errors into messages that say what to write.

The schema (``schemas/manifest.schema.json``) is the one definition of the language. A connector
names its provider by reference, so the per-type narrowing lives in ``$defs/connector_<type>``;
the loader validates each connector against the def of its provider's type after the document
pass, and the top-level schema stays usable by editors on its own.
"""
from __future__ import annotations

import copy
import difflib
import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Mapping

if TYPE_CHECKING:
    import jsonschema
    from jsonschema.exceptions import ValidationError

SCHEMA_FILE = Path(__file__).resolve().parent.parent / "schemas" / "manifest.schema.json"


@dataclass(frozen=True, slots=True)
class Problem:
    """A schema error: PATH into the document, the message, and whether it is about PATH's key."""

    path: tuple[Any, ...]
    message: str
    at_key: bool = False
    missing: str | None = None  # the key a "missing required key" problem is about
    suggested: str | None = None  # the key an "unknown key" problem suggests instead

# keywords whose failure the schema's own `errorMessage` explains better than a generic message;
# for the others (type, required, unknown keys) the generic one names the key or type precisely
_CUSTOM_FOR = {"pattern", "oneOf", "anyOf", "not", "const", "minLength", "maxLength", "enum", "minProperties"}


def schema_text() -> str:
    return SCHEMA_FILE.read_text(encoding="utf-8")


@lru_cache(maxsize=1)
def _schema() -> dict[str, Any]:
    return json.loads(schema_text())


def manifest_schema() -> dict[str, Any]:
    """The manifest JSON Schema (a fresh copy: callers may not mutate the one the loader uses)."""
    return copy.deepcopy(_schema())


def connector_types() -> tuple[str, ...]:
    return tuple(_schema()["$defs"]["provider"]["properties"]["type"]["enum"])


@lru_cache(maxsize=1)
def _document_schema() -> dict[str, Any]:
    # connectors are checked one by one against their provider type's def; checking them here
    # against the generic def as well would double the work and the messages
    schema = copy.deepcopy(_schema())
    schema["properties"]["connectors"]["additionalProperties"] = True
    return schema


@lru_cache(maxsize=1)
def _document_validator() -> "jsonschema.Draft202012Validator":
    import jsonschema

    return jsonschema.Draft202012Validator(_document_schema())


def _inline(node: Any, defs: dict[str, Any]) -> Any:
    """The schema with every local ``$ref`` replaced by its target (the language has no recursion).

    jsonschema resolves a ``$ref`` through its registry on every use; with 10,000 connectors that
    lookup alone costs a third of validation time.
    """
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            target = _inline(defs[ref[len("#/$defs/"):]], defs)
            rest = {k: _inline(v, defs) for k, v in node.items() if k != "$ref"}
            return {**target, **rest} if not (set(rest) & set(target)) else {"allOf": [target], **rest}
        return {k: _inline(v, defs) for k, v in node.items()}
    if isinstance(node, list):
        return [_inline(v, defs) for v in node]
    return node


def _flatten(schema: dict[str, Any]) -> dict[str, Any]:
    """Fold a per-type def's ``allOf: [<generic connector>]`` into one object schema.

    Equivalent, and it walks the connector's keys once instead of twice.
    """
    parts = schema.get("allOf") or []
    if not parts or "properties" not in parts[0] or parts[0].get("additionalProperties") is not False:
        return schema
    base, extras = parts[0], parts[1:]
    out = {k: v for k, v in base.items()}
    props = dict(base["properties"])
    for key, narrow in schema.get("properties", {}).items():
        props[key] = {"allOf": [props[key], narrow]} if key in props else narrow
    out["properties"] = props
    out["required"] = list(dict.fromkeys(base.get("required", []) + schema.get("required", [])))
    if extras:
        out["allOf"] = extras
    return out


@lru_cache(maxsize=None)
def _def_schema(def_name: str) -> dict[str, Any]:
    defs = _schema()["$defs"]
    return _flatten(_inline(defs[def_name], defs))


@lru_cache(maxsize=None)
def _def_validator(def_name: str) -> "jsonschema.Draft202012Validator":
    import jsonschema  # only once something is not plainly valid: it words the messages

    return jsonschema.Draft202012Validator(_def_schema(def_name))


# --- a fast "is it valid?" for the common case -------------------------------------------------------
# jsonschema costs ~0.2 ms per connector (an evolve() per keyword per level); at 100,000 connectors
# that is most of a plan. jsonschema-rs (compiled, ~2 us per connector) answers "is it valid?" from
# the same (inlined) schema; jsonschema stays the one source of messages, and of the verdict for
# anything jsonschema-rs does not plainly accept. ECMA-262 regexes (jsonschema-rs) are at most
# stricter than Python's (``$`` before a final newline, Unicode ``\d``): a stricter "no" only costs a
# second look, and tests/test_schema_agreement.py holds the two to the same verdicts.
@lru_cache(maxsize=None)
def _fast_validator(def_name: str | None) -> Any:
    import jsonschema_rs

    schema = _document_schema() if def_name is None else _def_schema(def_name)
    return jsonschema_rs.Draft202012Validator(schema)


def compile_document_validator() -> None:
    _fast_validator(None)


def _is_valid(def_name: str, value: Any) -> bool:
    try:
        if _fast_validator(def_name).is_valid(value):
            return True
    except Exception:  # noqa: BLE001 - a value it cannot take (huge int, odd type): let jsonschema judge
        pass
    return _def_validator(def_name).is_valid(value)


def _connector_def(type_name: str | None) -> str:
    return f"connector_{type_name}" if type_name in connector_types() else "connector"


def validate_document(data: Any) -> list[Problem]:
    """The document pass: everything but the connectors' bodies."""
    try:
        if _fast_validator(None).is_valid(data):
            return []
    except Exception:  # noqa: BLE001 - let jsonschema judge
        pass
    validator = _document_validator()
    if validator.is_valid(data):
        return []
    return _settle([p for e in validator.iter_errors(data) for p in _problems(e, ())])


def validate_connector(name: str, body: Any, type_name: str | None) -> list[Problem]:
    """One connector against its provider type's def (the generic def when the type is unknown).

    Paths in the problems are relative to the document: ``("connectors", name, ...)``.
    """
    prefix = ("connectors", name)
    out: list[Problem] = []
    def_name = _connector_def(type_name)
    if not _is_valid(def_name, body):
        validator = _def_validator(def_name)
        out += _settle([p for e in validator.iter_errors(body) for p in _problems(e, prefix)])
    if type_name in connector_types() and f"name_{type_name}" in _schema()["$defs"] and not _is_valid(
            f"name_{type_name}", name):
        name_validator = _def_validator(f"name_{type_name}")
        for e in name_validator.iter_errors(name):
            out.append(Problem(prefix, f"connector name {show(name)}: {e.schema.get('errorMessage') or e.message}", True))
    return out


def plainly_valid_connectors(bodies: Mapping[str, Any], type_name: str | None) -> bool:
    """Whether every connector of ``bodies`` (name -> body, all of one provider type) would have no
    problem from :func:`validate_connector`: one call of the compiled validator for them all, where
    one per connector cost half as much again at 10,000 (the calls, not the checks). False means
    "look at each": some may still pass, with jsonschema's second look."""
    try:
        return _batch_validator(type_name).is_valid(bodies)
    except Exception:  # noqa: BLE001 - a value it cannot take: each connector is looked at
        return False


@lru_cache(maxsize=None)
def _batch_validator(type_name: str | None) -> Any:
    import jsonschema_rs

    schema: dict[str, Any] = {"type": "object", "additionalProperties": _def_schema(_connector_def(type_name))}
    if type_name in connector_types() and f"name_{type_name}" in _schema()["$defs"]:
        schema["propertyNames"] = _def_schema(f"name_{type_name}")
    return jsonschema_rs.Draft202012Validator(schema)


def connector_errors(name: str, body: Any, type_name: str) -> list[str]:
    """For callers outside the loader (the engine, import): messages for one connector, no locations."""
    return [p.message for p in validate_connector(name, body, type_name)]


def _settle(problems: list[Problem]) -> list[Problem]:
    """One mistake, one message: a misspelt key is reported as unknown, not also as missing."""
    suggested = {(p.path[:-1], p.suggested) for p in problems if p.suggested}
    return [p for p in problems if not (p.missing and (p.path, p.missing) in suggested)]


# --- messages -------------------------------------------------------------------------------------

def show(value: Any, limit: int = 60) -> str:
    """A value for a message: quoted, control and non-ASCII characters escaped, long text cut."""
    text = ascii(value) if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= limit else text[: limit - 4] + "...'"


def _closest(word: str, candidates: Iterable[str]) -> str | None:
    candidates = list(candidates)
    folded = {c.lower(): c for c in candidates}
    if str(word).lower() in folded:  # apikey -> apiKey: case slips are the commonest typo
        return folded[str(word).lower()]
    if len(str(word)) > 2 * max((len(c) for c in candidates), default=0) + 8:
        return None  # no typo of a candidate is this long; difflib would take seconds on a 20 kB key
    match = difflib.get_close_matches(str(word), candidates, n=1, cutoff=0.6)
    return match[0] if match else None


def suggest(word: str, candidates: Iterable[str]) -> str:
    match = _closest(word, candidates)
    return f" (did you mean {match!r}?)" if match else ""


def is_sensitive(path: tuple[Any, ...]) -> bool:
    """A secret position: a connector's credentials, a provider's api_key, the state's dsn (and below)."""
    if len(path) >= 3:
        return (path[0] == "connectors" and path[2] == "credentials") or (path[0] == "providers" and path[2] == "api_key") \
            or (path[0] == "state" and path[1] == "dsn")
    return len(path) == 2 and path[0] == "state" and path[1] == "dsn"


def _field(path: tuple[Any, ...]) -> str:
    names = [str(p) for p in path if not isinstance(p, int)]
    return names[-1] if names else "manifest"


def _declared(schema: dict[str, Any]) -> set[str]:
    keys = set(schema.get("properties", {}))
    for sub in schema.get("allOf", []):
        if isinstance(sub, dict):
            keys |= set(sub.get("properties", {}))
            ref = sub.get("$ref")
            if ref and ref.startswith("#/$defs/"):
                keys |= _declared(_schema()["$defs"][ref.split("/")[-1]])
    return keys


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "a list"
    return "a mapping" if isinstance(value, dict) else type(value).__name__


def _problems(error: ValidationError, prefix: tuple[Any, ...]) -> list[Problem]:
    path = prefix + tuple(error.absolute_path)
    schema = error.schema if isinstance(error.schema, dict) else {}
    custom = schema.get("errorMessage") if error.validator in _CUSTOM_FOR or error.schema is False else None
    kind = error.validator
    value = error.instance
    field = _field(path)
    secret = is_sensitive(path)

    if "propertyNames" in error.schema_path and isinstance(value, str):
        # jsonschema reports a bad key at its mapping; point at the key itself
        what = {"connectors": "connector name", "providers": "provider name"}.get(field, "key")
        return [Problem(path + (value,), f"{what} {show(value)}: {custom or error.message}", True)]
    if kind == "additionalProperties" and isinstance(value, dict):
        known = _declared(schema)
        extras = [k for k in value if k not in known]
        sub = schema.get("additionalProperties")
        if isinstance(sub, dict) and sub.get("errorMessage"):
            return [Problem(path + (k,), f"{k!r}: {sub['errorMessage']}", True) for k in extras]
        out = []
        for k in extras:
            match = _closest(k, known)
            hint = f" (did you mean {match!r}?)" if match else (
                f"; expected one of: {', '.join(sorted(known))}" if known else "; no keys are allowed here")
            out.append(Problem(path + (k,), f"unknown key {show(k)}{hint}", True, suggested=match))
        return out
    if kind in ("anyOf", "oneOf") and not custom and error.context:
        from jsonschema.exceptions import best_match

        return _problems(best_match(error.context), prefix)
    if kind == "required" and isinstance(value, dict):
        missing = [k for k in error.validator_value if k not in value]
        hint = f": {custom}" if custom else ""
        where = "" if not path else f" in {_field(path)}"
        return [Problem(path, f"missing required key {m!r}{where}{hint}", True, missing=m) for m in missing]
    if kind == "not" or kind is False or error.schema is False:
        return [Problem(path, f"{field!r} is not allowed here" + (f": {custom}" if custom else ""), True)]
    if custom:
        if isinstance(value, (dict, list)):
            return [Problem(path, f"{field}: {custom}" if not custom.startswith(field) else custom, True)]
        if kind == "pattern" and field != "manifest" and not secret:
            return [Problem(path, f"{field}: {show(value)}: {custom}")]
        return [Problem(path, f"{field}: {custom}" if not custom.startswith(field) else custom)]
    if kind == "enum":
        options = [str(o) for o in error.validator_value]
        got = "" if secret else f" {show(value)}"
        return [Problem(path, f"{field}: unknown value{got}{'' if secret else suggest(value, options)}; "
                              f"expected one of: {', '.join(options)}")]
    if kind == "const":
        return [Problem(path, f"{field} must be {json.dumps(error.validator_value)}")]
    if kind == "type":
        expected = error.validator_value
        expected = " or ".join(expected) if isinstance(expected, list) else expected
        return [Problem(path, f"{field}: expected {expected}, got {_json_type(value)}")]
    if kind == "minLength":
        return [Problem(path, f"{field} must not be empty" if error.validator_value == 1
                        else f"{field} must be at least {error.validator_value} characters")]
    if kind == "maxLength":
        return [Problem(path, f"{field} must be at most {error.validator_value} characters")]
    if kind == "minItems":
        return [Problem(path, f"{field} must not be empty: list at least one item", True)]
    if kind == "minProperties":
        return [Problem(path, f"{field} must not be empty", True)]
    if kind == "dependentRequired":
        return [Problem(path, f"{k!r} needs {', '.join(map(repr, deps))} alongside it", True)
                for k, deps in error.validator_value.items() if k in value and any(d not in value for d in deps)]
    if kind in ("minimum", "maximum"):
        return [Problem(path, f"{field} must be {'at least' if kind == 'minimum' else 'at most'} {error.validator_value}")]
    if kind == "pattern":
        return [Problem(path, f"{field}: {'value' if secret else show(value)} does not match {error.validator_value}")]
    if secret:
        return [Problem(path, f"{field}: invalid value ({kind})")]
    return [Problem(path, f"{field}: {error.message}")]
