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
from typing import Any, Iterable

import jsonschema
from jsonschema.exceptions import ValidationError, best_match

SCHEMA_FILE = Path(__file__).resolve().parent.parent / "schemas" / "manifest.schema.json"
SENSITIVE_KEYS = ("credentials", "api_key", "dsn")


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
def _document_validator() -> jsonschema.Draft202012Validator:
    # connectors are checked one by one against their provider type's def; checking them here
    # against the generic def as well would double the work and the messages
    schema = copy.deepcopy(_schema())
    schema["properties"]["connectors"]["additionalProperties"] = True
    return jsonschema.Draft202012Validator(schema)


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
def _def_validator(def_name: str) -> jsonschema.Draft202012Validator:
    defs = _schema()["$defs"]
    return jsonschema.Draft202012Validator(_flatten(_inline(defs[def_name], defs)))


# --- a fast "is it valid?" for the common case -------------------------------------------------------
# jsonschema costs ~0.2 ms per connector (an evolve() per keyword per level); at 100,000 connectors
# that is most of a plan. The checker below is compiled once from the same (inlined) def, for the
# keywords the language uses, with Draft 2020-12 semantics. It only ever answers "valid" when every
# constraint holds; anything else (an invalid body, a keyword it does not know) goes to jsonschema,
# which stays the one source of verdicts and messages.
_ANNOTATIONS = frozenset({"description", "errorMessage", "title", "$schema", "$id", "$comment", "examples",
                          "default", "deprecated", "readOnly", "writeOnly"})
_TYPES: dict[str, Any] = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "null": lambda v: v is None,
    "boolean": lambda v: isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "integer": lambda v: (isinstance(v, int) and not isinstance(v, bool)) or (isinstance(v, float) and v.is_integer()),
}


class _Unsupported(Exception):
    pass


def _compile(schema: Any) -> Any:  # -> Callable[[Any], bool]
    from jsonschema._utils import equal  # the same equality jsonschema's const/enum use
    import re

    if schema is True:
        return lambda v: True
    if schema is False:
        return lambda v: False
    if not isinstance(schema, dict):
        raise _Unsupported(repr(schema))
    checks: list[Any] = []
    unknown = set(schema) - _ANNOTATIONS - {
        "type", "properties", "additionalProperties", "required", "not", "const", "enum", "minLength", "maxLength",
        "pattern", "allOf", "anyOf", "oneOf", "if", "then", "else", "items", "propertyNames", "minProperties",
        "maxProperties", "minimum", "maximum", "dependentRequired", "patternProperties"}
    if unknown:
        raise _Unsupported(", ".join(sorted(unknown)))
    if "type" in schema:
        names = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        preds = [_TYPES[t] for t in names]
        checks.append(preds[0] if len(preds) == 1 else (lambda v: any(p(v) for p in preds)))
    if "const" in schema:
        const = schema["const"]
        checks.append(lambda v: equal(v, const))
    if "enum" in schema:
        options = list(schema["enum"])
        checks.append(lambda v: any(equal(v, o) for o in options))
    if "minLength" in schema:
        n_min = schema["minLength"]
        checks.append(lambda v: not isinstance(v, str) or len(v) >= n_min)
    if "maxLength" in schema:
        n_max = schema["maxLength"]
        checks.append(lambda v: not isinstance(v, str) or len(v) <= n_max)
    if "pattern" in schema:
        rx = re.compile(schema["pattern"])
        checks.append(lambda v: not isinstance(v, str) or rx.search(v) is not None)
    if "minimum" in schema:
        lo = schema["minimum"]
        checks.append(lambda v: not _TYPES["number"](v) or v >= lo)
    if "maximum" in schema:
        hi = schema["maximum"]
        checks.append(lambda v: not _TYPES["number"](v) or v <= hi)
    if "required" in schema:
        req = tuple(schema["required"])
        checks.append(lambda v: not isinstance(v, dict) or all(k in v for k in req))
    if "minProperties" in schema:
        p_min = schema["minProperties"]
        checks.append(lambda v: not isinstance(v, dict) or len(v) >= p_min)
    if "maxProperties" in schema:
        p_max = schema["maxProperties"]
        checks.append(lambda v: not isinstance(v, dict) or len(v) <= p_max)
    if "dependentRequired" in schema:
        deps = {k: tuple(d) for k, d in schema["dependentRequired"].items()}
        checks.append(lambda v: not isinstance(v, dict) or all(
            all(d in v for d in ds) for k, ds in deps.items() if k in v))
    props = {k: _compile(sub) for k, sub in schema.get("properties", {}).items()}
    patterns = [(re.compile(p), _compile(sub)) for p, sub in schema.get("patternProperties", {}).items()]
    if props:
        def properties(v: Any) -> bool:
            if isinstance(v, dict):
                for k, val in v.items():
                    c = props.get(k)
                    if c is not None and not c(val):
                        return False
            return True
        checks.append(properties)
    if patterns:
        checks.append(lambda v: not isinstance(v, dict) or all(
            c(val) for k, val in v.items() for rx, c in patterns if rx.search(k)))
    if schema.get("additionalProperties") is False and not patterns:
        allowed = frozenset(props)
        checks.append(lambda v: not isinstance(v, dict) or allowed.issuperset(v))
    elif "additionalProperties" in schema:
        extra = _compile(schema["additionalProperties"])

        def additional(v: Any) -> bool:
            if not isinstance(v, dict):
                return True
            return all(extra(val) for k, val in v.items()
                       if k not in props and not any(rx.search(k) for rx, _c in patterns))
        checks.append(additional)
    if "propertyNames" in schema:
        names_ok = _compile(schema["propertyNames"])
        checks.append(lambda v: not isinstance(v, dict) or all(names_ok(k) for k in v))
    if "items" in schema:
        item = _compile(schema["items"])
        checks.append(lambda v: not isinstance(v, list) or all(item(x) for x in v))
    if "not" in schema:
        negated = _compile(schema["not"])
        checks.append(lambda v: not negated(v))
    for key, combine in (("allOf", all), ("anyOf", any)):
        if key in schema:
            subs = [_compile(s) for s in schema[key]]
            checks.append(subs[0] if len(subs) == 1 else
                          (lambda v, subs=subs, combine=combine: combine(s(v) for s in subs)))
    if "oneOf" in schema:
        one = [_compile(s) for s in schema["oneOf"]]
        checks.append(lambda v: sum(1 for s in one if s(v)) == 1)
    if "if" in schema:
        cond = _compile(schema["if"])
        then = _compile(schema["then"]) if "then" in schema else (lambda v: True)
        other = _compile(schema["else"]) if "else" in schema else (lambda v: True)
        checks.append(lambda v: then(v) if cond(v) else other(v))
    if len(checks) == 1:
        return checks[0]
    if not checks:
        return lambda v: True

    def every(v: Any) -> bool:
        for c in checks:
            if not c(v):
                return False
        return True
    return every


@lru_cache(maxsize=None)
def _fast_check(def_name: str) -> Any:
    """A compiled validity check for a def, or None when it uses a keyword the compiler lacks."""
    try:
        return _compile(_def_validator(def_name).schema)
    except _Unsupported:
        return None


def _is_valid(def_name: str, value: Any) -> bool:
    fast = _fast_check(def_name)
    if fast is not None:
        try:
            if fast(value):
                return True
        except Exception:  # noqa: BLE001 - anything odd: let jsonschema judge
            pass
    return _def_validator(def_name).is_valid(value)


def _connector_def(type_name: str | None) -> str:
    return f"connector_{type_name}" if type_name in connector_types() else "connector"


def validate_document(data: Any) -> list[Problem]:
    """The document pass: everything but the connectors' bodies."""
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
    match = difflib.get_close_matches(str(word), candidates, n=1, cutoff=0.6)
    return match[0] if match else None


def suggest(word: str, candidates: Iterable[str]) -> str:
    match = _closest(word, candidates)
    return f" (did you mean {match!r}?)" if match else ""


def is_sensitive(path: tuple[Any, ...]) -> bool:
    return any(k in SENSITIVE_KEYS for k in path[:4] if isinstance(k, str)) and (
        (len(path) >= 3 and path[0] == "connectors" and path[2] == "credentials")
        or (len(path) >= 3 and path[0] == "providers" and path[2] == "api_key")
        or (len(path) >= 2 and path[0] == "state" and path[1] == "dsn"))


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
