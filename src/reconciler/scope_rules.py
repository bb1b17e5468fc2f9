"""One truth for what Aimable and the Connectors API accept per connector type.

The manifest schema's per-type parts (``$defs/connector_aimable``, ``$defs/connector_connectors-api``)
are generated from these tables (``python -m reconciler.scope_rules`` rewrites them;
``tests/test_scope_rules.py`` fails when they disagree), and the two emulators validate request
bodies with :func:`problems` over the same tables. So ``reconcile validate`` says ok exactly when
the emulator would create the connector.

Sources: the Connectors API's TypeConfig table (``seeds/connectors-api.txt`` lines 54-62) names the
fields; its S3 examples (lines 37-50, 152-164) show ``bucket`` and ``region`` always present and the
``accessKeyId``/``secretAccessKey`` credentials. Aimable's seed (``seeds/aimable-collection-
connectors.txt``) shows ``google-drive`` with ``scope_config.folder_ids`` (line 25), a credential
of ``access_token`` + ``refresh_token`` (lines 20-23) and calls the scope optional (line 13).
Everything the seeds leave open (which fields are required, value types, other types' credential
fields, Aimable's other slugs and keys) is decided here, once, with ``why`` saying so; the
decisions are printed in ``docs/providers.md``. Messages never quote the submitted values.
"""
from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

# -- value kinds: one predicate and one JSON Schema each, kept side by side so they cannot drift --
NON_BLANK = r"\S"
# "$(?!\n)": Python's "$" also matches before a final newline; the schema's patterns refuse one
URL = r"^https?://[^\s/]+\S*$(?!\n)"
HTTPS_URL = r"^https://[^\s/]+\S*$(?!\n)"
_RX = {k: re.compile(v) for k, v in {"string": NON_BLANK, "url": URL, "https_url": HTTPS_URL}.items()}


def _is_str(value: Any, kind: str = "string") -> bool:
    return isinstance(value, str) and _RX[kind].search(value) is not None


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


_ITEM = {"type": "string", "minLength": 1, "pattern": NON_BLANK, "errorMessage": "must be a non-empty string"}
KINDS: dict[str, tuple[Any, dict[str, Any], str]] = {
    # kind -> (predicate, JSON Schema, what to write)
    "string": (_is_str, {"type": "string", "minLength": 1, "pattern": NON_BLANK}, "a non-empty string"),
    "url": (lambda v: _is_str(v, "url"), {"type": "string", "pattern": URL}, "an http(s) URL"),
    "https_url": (lambda v: _is_str(v, "https_url"), {"type": "string", "pattern": HTTPS_URL},
                  "an https:// URL like https://acme.atlassian.net"),
    "string_list": (lambda v: isinstance(v, list) and len(v) > 0 and all(_is_str(x) for x in v),
                    {"type": "array", "minItems": 1, "items": _ITEM}, "a non-empty list of non-empty strings"),
    "port": (lambda v: _is_int(v) and 1 <= v <= 65535, {"type": "integer", "minimum": 1, "maximum": 65535},
             "an integer port between 1 and 65535"),
    "bool": (lambda v: isinstance(v, bool), {"type": "boolean"}, "true or false"),
    "date_range": (
        lambda v: _is_str(v) or (isinstance(v, dict) and 0 < len(v) and set(v) <= {"from", "to"}
                                 and all(_is_str(x) for x in v.values())),
        {"oneOf": [{"type": "string", "minLength": 1, "pattern": NON_BLANK},
                   {"type": "object", "minProperties": 1, "additionalProperties": False,
                    "properties": {"from": _ITEM, "to": _ITEM}}]},
        'a span like "30d" or a mapping with from/to dates'),
}


def kind_schema(kind: str) -> dict[str, Any]:
    return {**KINDS[kind][1], "errorMessage": f"must be {KINDS[kind][2]}"}


@dataclass(frozen=True, slots=True)
class Field:
    kind: str
    required: bool = False
    why: str = ""  # the seed line it comes from, or "decided: ..."

    def ok(self, value: Any) -> bool:
        return bool(KINDS[self.kind][0](value))

    @property
    def expected(self) -> str:
        return KINDS[self.kind][2]


@dataclass(frozen=True, slots=True)
class TypeRules:
    """What one connector type accepts: its scope keys and its credential fields."""

    scope: dict[str, Field]
    credentials: dict[str, Field] = field(default_factory=dict)  # values are secrets (strings)
    oauth: bool = False  # no credentials: authorized in a browser (the platform's OAuth flow)
    why: str = ""

    @property
    def scope_required(self) -> bool:
        return any(f.required for f in self.scope.values())

    @property
    def credentials_required(self) -> bool:
        return any(f.required for f in self.credentials.values())


@dataclass(frozen=True, slots=True)
class Problem:
    path: tuple[str, ...]  # e.g. ("config", "bucket"); the platform's own field names
    message: str
    code: str  # missing | unknown | invalid | forbidden


def _seed(line: str) -> str:
    return f"seeds/connectors-api.txt line {line}"


_CAPI_CRED_WHY = "decided: the seed documents credentials only for s3"
CONNECTORS_API: dict[str, TypeRules] = {
    "s3": TypeRules(
        scope={"bucket": Field("string", True, _seed("55; present in both examples, 42 and 157")),
               "region": Field("string", True, _seed("55; present in both examples, 43 and 158")),
               "prefix": Field("string", False, _seed("55 (the SDK example at 156-159 leaves it out)")),
               "endpoint": Field("url", False, _seed("55; decided: an http(s) URL (S3-compatible stores)"))},
        credentials={"accessKeyId": Field("string", True, _seed("47, 161")),
                     "secretAccessKey": Field("string", True, _seed("48, 162"))},
        why=_seed("55")),
    "google_drive": TypeRules(scope={}, oauth=True, why=_seed("56: OAuth handled separately (lines 128-146)")),
    "confluence": TypeRules(
        scope={"instanceUrl": Field("https_url", True, _seed("57; decided: required (no instance, nothing to sync), https")),
               "spaceKeys": Field("string_list", False, _seed("57; decided: optional (all spaces)"))},
        credentials={"email": Field("string", True, _CAPI_CRED_WHY + " (Atlassian API tokens pair with an email)"),
                     "apiToken": Field("string", True, _CAPI_CRED_WHY)},
        why=_seed("57")),
    "github": TypeRules(
        scope={"repos": Field("string_list", True, _seed("58; decided: required")),
               "branch": Field("string", False, _seed("58")),
               "pathFilter": Field("string", False, _seed("58"))},
        credentials={"token": Field("string", True, _CAPI_CRED_WHY)},
        why=_seed("58")),
    "slack": TypeRules(
        scope={"channels": Field("string_list", True, _seed("59; decided: required")),
               "dateRange": Field("date_range", False, _seed("59; decided: a span or from/to"))},
        credentials={"botToken": Field("string", True, _CAPI_CRED_WHY)},
        why=_seed("59")),
    "notion": TypeRules(scope={}, oauth=True, why=_seed("60: OAuth handled separately (lines 128-146)")),
    "salesforce": TypeRules(
        scope={"objects": Field("string_list", True, _seed("61; decided: required")),
               "soqlFilter": Field("string", False, _seed("61"))},
        credentials={"clientId": Field("string", True, _CAPI_CRED_WHY),
                     "clientSecret": Field("string", True, _CAPI_CRED_WHY)},
        why=_seed("61")),
    "postgresql": TypeRules(
        scope={"host": Field("string", True, _seed("62; decided: required")),
               "port": Field("port", True, _seed("62; decided: required, an integer")),
               "database": Field("string", True, _seed("62; decided: required")),
               "schema": Field("string", False, _seed("62; decided: the server fills \"public\""))},
        credentials={"username": Field("string", True, _CAPI_CRED_WHY),
                     "password": Field("string", True, _CAPI_CRED_WHY)},
        why=_seed("62")),
}
# what the Connectors API fills into config when the caller leaves it out (decided)
CONNECTORS_API_DEFAULTS: dict[str, dict[str, Any]] = {"postgresql": {"schema": "public"}}

_AIMABLE_SEED = "seeds/aimable-collection-connectors.txt"
_AIMABLE_CREDENTIALS = {
    "access_token": Field("string", True, f"{_AIMABLE_SEED} line 21"),
    "refresh_token": Field("string", False, f"{_AIMABLE_SEED} line 22; decided: optional"),
}


def _aimable(why: str, **keys: str) -> TypeRules:
    # the seed calls the scope optional (line 13): no scope key is required for any slug
    return TypeRules(scope={k: Field(kind, False, why) for k, kind in keys.items()},
                     credentials=dict(_AIMABLE_CREDENTIALS), why=why)


_DECIDED = "decided (the seed names only google-drive, slack, github as examples, line 8)"
AIMABLE: dict[str, TypeRules] = {
    "google-drive": _aimable(f"{_AIMABLE_SEED} lines 8, 25 (folder_ids); other keys decided",
                             folder_ids="string_list", file_ids="string_list", shared_drive_ids="string_list",
                             include_shared="bool"),
    "slack": _aimable(f"{_AIMABLE_SEED} line 8 (channels); keys decided",
                      channel_ids="string_list", include_private="bool", include_threads="bool"),
    "github": _aimable(f"{_AIMABLE_SEED} line 8 (repositories); keys decided",
                       repositories="string_list", branch="string", path_filter="string"),
    "notion": _aimable(_DECIDED, page_ids="string_list", database_ids="string_list"),
    "confluence": _aimable(_DECIDED, space_keys="string_list", page_ids="string_list"),
    "jira": _aimable(_DECIDED, project_keys="string_list", jql="string"),
    "sharepoint": _aimable(_DECIDED, site_ids="string_list", drive_ids="string_list", folder_ids="string_list"),
    "onedrive": _aimable(_DECIDED, folder_ids="string_list"),
    "dropbox": _aimable(_DECIDED, paths="string_list"),
    "gmail": _aimable(_DECIDED, label_ids="string_list", query="string"),
}

PLATFORMS: dict[str, dict[str, TypeRules]] = {"connectors-api": CONNECTORS_API, "aimable": AIMABLE}
# the platform's own names for the manifest's scope and credentials
WIRE_NAMES = {"connectors-api": ("config", "credentials"), "aimable": ("scope_config", "credential")}


# -- checking a request body ----------------------------------------------------------------------

def check_scope(rules: TypeRules, value: Any, where: str, type_name: str) -> list[Problem]:
    if not isinstance(value, Mapping):
        return [Problem((where,), "must be an object", "invalid")]
    out = []
    allowed = ", ".join(rules.scope) or "none"
    for key in value:
        if key not in rules.scope:
            out.append(Problem((where, str(key)), f"unknown field for {type_name}; allowed: {allowed}", "unknown"))
    for key, spec in rules.scope.items():
        if key not in value:
            if spec.required:
                out.append(Problem((where, key), f"is required for {type_name}", "missing"))
        elif not spec.ok(value[key]):
            out.append(Problem((where, key), f"must be {spec.expected}", "invalid"))
    return out


def check_credentials(rules: TypeRules, value: Any, where: str, type_name: str, *, partial: bool = False
                      ) -> list[Problem]:
    if rules.oauth:
        return [Problem((where,), f"{type_name} takes no credentials: it is authorized through the OAuth flow",
                        "forbidden")]
    if not isinstance(value, Mapping):
        return [Problem((where,), "must be an object of non-empty strings", "invalid")]
    out = []
    allowed = ", ".join(rules.credentials)
    for key in value:
        if key not in rules.credentials:
            out.append(Problem((where, str(key)), f"unknown credential field for {type_name}; allowed: {allowed}",
                               "unknown"))
    for key, spec in rules.credentials.items():
        if key not in value:
            if spec.required and not partial:
                out.append(Problem((where, key), f"is required for {type_name}", "missing"))
        elif not spec.ok(value[key]):
            out.append(Problem((where, key), f"must be {spec.expected}", "invalid"))
    return out


# -- the schema parts -----------------------------------------------------------------------------

def _secret() -> dict[str, Any]:
    return {"$ref": "#/$defs/secret_ref"}


def scope_schema(rules: TypeRules, type_name: str) -> dict[str, Any]:
    node: dict[str, Any] = {"type": "object", "additionalProperties": False,
                            "properties": {k: kind_schema(f.kind) for k, f in rules.scope.items()}}
    required = [k for k, f in rules.scope.items() if f.required]
    if required:
        node["required"] = required
    if not rules.scope:
        node["description"] = f"{type_name} takes no scope keys."
    return node


def credentials_schema(rules: TypeRules, type_name: str) -> dict[str, Any]:
    if rules.oauth:
        return {"not": {}, "errorMessage": f"{type_name} takes no credentials: it is authorized in a browser "
                                           "(OAuth); remove `credentials` and open the authorize URL that "
                                           "apply and status print"}
    node: dict[str, Any] = {"type": "object", "additionalProperties": False,
                            "properties": {k: _secret() for k in rules.credentials}}
    required = [k for k, f in rules.credentials.items() if f.required]
    if required:
        node["required"] = required
    return node


def _branch(type_name: str, rules: TypeRules, *, credentials: bool) -> dict[str, Any]:
    then: dict[str, Any] = {"properties": {"scope": scope_schema(rules, type_name)}}
    required = []
    if rules.scope_required:
        required.append("scope")
    if credentials:
        then["properties"]["credentials"] = credentials_schema(rules, type_name)
        if rules.credentials_required:
            required.append("credentials")
    if required:
        then["required"] = required
    return {"if": {"properties": {"source": {"const": type_name}}, "required": ["source"]}, "then": then}


def apply_to_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` with the two platforms' per-type parts regenerated from the tables (in place)."""
    defs = schema["$defs"]
    capi = defs["connector_connectors-api"]
    capi["allOf"] = [capi["allOf"][0]] + [_branch(t, r, credentials=True) for t, r in CONNECTORS_API.items()]
    capi["properties"]["source"] = {"enum": list(CONNECTORS_API), "description": "Connectors API connector type "
                                    "(seeds/connectors-api.txt, TypeConfig table)."}
    capi["properties"].pop("credentials", None)
    aim = defs["connector_aimable"]
    aim["allOf"] = [aim["allOf"][0]] + [_branch(t, r, credentials=False) for t, r in AIMABLE.items()]
    aim["properties"]["source"] = {"enum": list(AIMABLE), "description": "Aimable provider_slug."}
    # one credential object for every slug (the seed's), so it stays a plain property
    aim["properties"]["credentials"] = credentials_schema(next(iter(AIMABLE.values())), "aimable")
    return schema


SCHEMA_FILE = Path(__file__).resolve().parent / "schemas" / "manifest.schema.json"


def render_schema(text: str) -> str:
    return json.dumps(apply_to_schema(json.loads(text)), indent=2) + "\n"


# -- examples (tests, docs) ----------------------------------------------------------------------

SAMPLES = {"string": "value", "url": "https://s3.example.com", "https_url": "https://acme.atlassian.net",
           "string_list": ["one"], "port": 5432, "bool": True, "date_range": "30d"}


def minimal_scope(rules: TypeRules) -> dict[str, Any]:
    """The smallest scope the type accepts (its required keys with sample values)."""
    return {k: SAMPLES[f.kind] for k, f in rules.scope.items() if f.required}


# -- the docs -------------------------------------------------------------------------------------

def docs_lines() -> list[str]:
    out: list[str] = []
    titles = {"connectors-api": "Connectors API: `scope` = `config`, `credentials` = `credentials`",
              "aimable": "Aimable: `source` = `provider_slug`, `scope` = `scope_config`, `credentials` = `credential`"}
    for platform, table in PLATFORMS.items():
        out += ["", f"## {titles[platform]}", "",
                "What `reconcile validate` and the emulator both accept (generated from "
                "`reconciler/scope_rules.py`; *decided* marks what the seed leaves open). Unknown keys are "
                "refused; every value must be non-empty.", "",
                "| type | scope keys (required in bold) | credentials (required in bold) | source |",
                "|---|---|---|---|"]
        for name, rules in table.items():
            scope = ", ".join((f"**`{k}`**" if f.required else f"`{k}`") + f" ({f.kind})"
                              for k, f in rules.scope.items()) or "none"
            creds = ("none: OAuth in a browser, apply/status print the authorize URL" if rules.oauth else
                     ", ".join(f"**`{k}`**" if f.required else f"`{k}`" for k, f in rules.credentials.items()))
            decided = [f"`{k}`: {f.why.split('decided: ', 1)[1]}" for k, f in {**rules.scope, **rules.credentials}.items()
                       if "decided: " in f.why]
            source = rules.why + ("; decided: " + "; ".join(dict.fromkeys(decided)) if decided else "")
            out.append(f"| `{name}` | {_cell(scope)} | {_cell(creds)} | {_cell(source)} |")
        out += ["", *NOTES[platform]]
    return out


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


NOTES = {
    "connectors-api": [
        "- Where the seed is silent the rule is the stricter one: a field is required when without it",
        "  there is nothing to sync (s3 `bucket` and `region`, which both of the seed's examples carry;",
        "  confluence `instanceUrl`, github `repos`, slack `channels`, salesforce `objects`, postgresql",
        "  `host`, `port`, `database`); the rest is optional and the server fills postgresql `schema: public`.",
        "  Lists must not be empty, strings not blank, unknown keys are refused.",
        "- `google_drive` and `notion` take no `scope` keys and no `credentials`: apply creates them, they wait",
        "  as `pending` until a person opens the URL from `GET /v1/connectors/oauth/{type}/authorize` (printed",
        "  by plan, apply and status) and the platform's callback completes.",
        "- The list's paging is not documented (the seed shows a bare `{\"data\": [...]}`): the adapter follows",
        "  a cursor or `Link: rel=\"next\"` the server shows, probes `offset` after a full page with neither,",
        "  and refuses to plan when it cannot see past a full page.",
        "- PUT sends `name` and the whole `config` (declared keys plus the platform's own); if the server",
        "  merges instead of replacing, keys no longer declared are removed with `null` in a second PUT.",
    ],
    "aimable": [
        "- The seed calls `scope_config` optional (line 13): no key is required; a key given must be known",
        "  for its slug and non-empty. Slugs other than google-drive, slack and github are decided.",
        "- Each create sends an `Idempotency-Key` made from a nonce the state journals before the call: a",
        "  retry of that attempt (even after a crash) reuses it, a later create (after a delete) gets a new",
        "  one, so a key the platform still remembers never hands back a deleted connector.",
        "- Lists take `limit` (at most 100, seed line 79); the cursor is not documented, so the same paging",
        "  guard as the Connectors API applies.",
    ],
}


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    current = SCHEMA_FILE.read_text(encoding="utf-8")
    wanted = render_schema(current)
    if "--check" in args:
        if current != wanted:
            print(f"out of date: {SCHEMA_FILE} (run python -m reconciler.scope_rules)")
            return 1
        return 0
    if current != wanted:
        SCHEMA_FILE.write_text(wanted, encoding="utf-8")
        print(f"wrote: {SCHEMA_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
