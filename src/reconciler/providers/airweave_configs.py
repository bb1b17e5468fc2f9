"""Airweave's per-source config classes, as data: the one table the schema, adapter and emulator use.

Read from ``backend/airweave/platform/configs/config.py`` in ``airweave-ai/airweave`` at commit
:data:`CONFIG_COMMIT` (the pydantic ``SourceConfig`` subclasses; ``BaseConfig`` in ``_base.py``
adds no fields and no ``extra="forbid"``, so unknown keys are dropped). Where the real server we ran
(backend commit :data:`SERVER_COMMIT`, ``shared/providers.md`` "Real-server facts") had fields the
file we could read lacks, the field says so in ``origin``: GitHub's ``sync_pull_requests`` and
Google Drive's ``exclude_patterns``.

The server validates ``config`` through the class and stores ``model_dump()``: every field, defaults
included. So the manifest schema allows exactly these keys (generated from this table:
``python -m reconciler.providers.airweave_configs --write-schema``), the emulator validates and
dumps through it, and the adapter's ``scope_defaults`` (field ownership, ``import``) reads it.
"""
from __future__ import annotations

import copy
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import airweave_auth as auth

CONFIG_COMMIT = "dd85f495651ff308288a85264fbdae287c78d782"
SERVER_COMMIT = "32cfea0c"
CONFIG_PATH = "backend/airweave/platform/configs/config.py"
_READ = f"{CONFIG_PATH}@{CONFIG_COMMIT[:8]}"
_SERVER = f"real server {SERVER_COMMIT}"


@dataclass(frozen=True, slots=True)
class ConfigField:
    """One pydantic field: ``type`` is str | bool | int | list (of str); ``nullable`` = Optional[...]."""

    name: str
    type: str
    required: bool = False
    default: Any = None
    nullable: bool = False
    pattern: str | None = None
    min_length: int | None = None  # characters for str, items for list
    ge: int | None = None
    le: int | None = None
    # the class's "before" validators: a comma-separated string becomes a list; dates take "/";
    # an https:// prefix is stripped; the value is stripped of surrounding blanks
    split_commas: bool = False
    slash_dates: bool = False
    strip_scheme: bool = False
    strip: bool = False
    secret: bool = False
    origin: str = _READ
    description: str = ""
    error: str | None = None  # the manifest schema's errorMessage for a pattern/length failure

    def json_schema(self) -> dict[str, Any]:
        kind = {"str": "string", "bool": "boolean", "int": "integer", "list": "array"}[self.type]
        out: dict[str, Any] = {"type": [kind, "null"] if self.nullable else kind}
        if self.type == "list":
            out["items"] = {"type": "string"}
            if self.min_length is not None:
                out["minItems"] = self.min_length
        elif self.min_length is not None:
            out["minLength"] = self.min_length
        if self.pattern is not None:
            # the class's regex is anchored on the whole text (pydantic's Rust regex); Python's "$"
            # also matches before a trailing newline, so the schema says "and no newline follows"
            out["pattern"] = self.pattern + "(?!\\n)" if self.pattern.endswith("$") else self.pattern
        if self.ge is not None:
            out["minimum"] = self.ge
        if self.le is not None:
            out["maximum"] = self.le
        if self.description:
            out["description"] = self.description
        if self.default is not None and not self.required:
            out["default"] = self.default
        if self.error:
            out["errorMessage"] = self.error
        return out


@dataclass(frozen=True, slots=True)
class SourceConfig:
    short_name: str
    class_name: str
    fields: tuple[ConfigField, ...] = ()
    origin: str = _READ
    extras: dict[str, Any] = field(default_factory=dict)  # schema keywords beyond the fields

    @property
    def required(self) -> list[str]:
        return [f.name for f in self.fields if f.required]

    def defaults(self) -> dict[str, Any]:
        """What ``model_dump()`` holds for every field the caller left out (required ones have none)."""
        return {f.name: copy.deepcopy(f.default) for f in self.fields if not f.required}


def _empty(short_name: str, class_name: str) -> SourceConfig:
    return SourceConfig(short_name, class_name)


_BRANCH = ConfigField("branch", "str", default="", description="Branch to sync; empty: the default branch.")

SOURCES: dict[str, SourceConfig] = {s.short_name: s for s in [
    _empty("airtable", "AirtableConfig"),
    _empty("asana", "AsanaConfig"),
    _empty("attio", "AttioConfig"),
    SourceConfig("bitbucket", "BitbucketConfig", (
        _BRANCH,
        ConfigField("file_extensions", "list", default=[], split_commas=True,
                    description="File extensions to include; empty: all text files."),
    )),
    SourceConfig("box", "BoxConfig", (
        ConfigField("folder_id", "str", default="0", description="Box folder to sync; \"0\" is the root."),
    )),
    _empty("clickup", "ClickUpConfig"),
    SourceConfig("coda", "CodaConfig", (
        ConfigField("doc_id", "str", nullable=True, description="Only this doc."),
        ConfigField("folder_id", "str", nullable=True, description="Only docs in this folder."),
    )),
    _empty("confluence", "ConfluenceConfig"),
    _empty("dropbox", "DropboxConfig"),
    SourceConfig("freshdesk", "FreshdeskConfig", (
        ConfigField("domain", "str", required=True,
                    description="mycompany for mycompany.freshdesk.com (RequiredTemplateConfig: no default)."),
    )),
    SourceConfig("github", "GitHubConfig", (
        ConfigField("repo_name", "str", required=True, min_length=3, pattern=r"^[a-zA-Z0-9_-]+/[a-zA-Z0-9_.-]+$",
                    strip=True, description="OWNER/REPO, like airweave-ai/airweave.",
                    error="repo_name is OWNER/REPO (letters, digits, _ . -), like company/docs"),
        _BRANCH,
        ConfigField("sync_pull_requests", "bool", default=False, origin=_SERVER,
                    description="Also sync pull requests."),
    )),
    SourceConfig("gitlab", "GitLabConfig", (
        ConfigField("project_id", "str", default="", description="Project to sync; empty: every accessible one."),
        _BRANCH,
    )),
    SourceConfig("gmail", "GmailConfig", (
        ConfigField("after_date", "str", nullable=True, slash_dates=True,
                    description="Only mail after this date (YYYY/MM/DD or YYYY-MM-DD)."),
        ConfigField("included_labels", "list", default=["inbox", "sent"], split_commas=True),
        ConfigField("excluded_labels", "list", default=["spam", "trash"], split_commas=True),
        ConfigField("excluded_categories", "list", default=["promotions", "social"], split_commas=True),
        ConfigField("gmail_query", "str", nullable=True, description="A Gmail query overriding the filters."),
    )),
    _empty("google_calendar", "GoogleCalendarConfig"),
    SourceConfig("google_docs", "GoogleDocsConfig", (
        ConfigField("include_trashed", "bool", default=False),
        ConfigField("include_shared", "bool", default=True),
    )),
    SourceConfig("google_drive", "GoogleDriveConfig", (
        ConfigField("include_patterns", "list", default=[], split_commas=True,
                    description="Paths to include, like my_folder/*; empty: everything."),
        ConfigField("exclude_patterns", "list", default=[], split_commas=True, origin=_SERVER,
                    description="Paths or patterns to leave out, like *.tmp."),
    )),
    SourceConfig("google_slides", "GoogleSlidesConfig", (
        ConfigField("include_trashed", "bool", default=False),
        ConfigField("include_shared", "bool", default=True),
    )),
    _empty("hubspot", "HubspotConfig"),
    _empty("intercom", "IntercomConfig"),
    SourceConfig("jira", "JiraConfig", (
        ConfigField("project_keys", "list", required=True, min_length=1,
                    description="Jira project keys to sync, like PROJ."),
        ConfigField("zephyr_scale_api_token", "str", nullable=True, secret=True,
                    description="Zephyr Scale token (feature-flagged)."),
    )),
    _empty("linear", "LinearConfig"),
    _empty("monday", "MondayConfig"),
    _empty("notion", "NotionConfig"),
    _empty("onedrive", "OneDriveConfig"),
    _empty("outlook_calendar", "OutlookCalendarConfig"),
    SourceConfig("outlook_mail", "OutlookMailConfig", (
        ConfigField("after_date", "str", nullable=True, slash_dates=True),
        ConfigField("included_folders", "list", default=["inbox", "sentitems"], split_commas=True),
        ConfigField("excluded_folders", "list", default=["junkemail", "deleteditems"], split_commas=True),
    )),
    # PostgreSQLConfig has no fields (it is gone from the file at CONFIG_COMMIT; an older one had `pass`)
    _empty("postgresql", "PostgreSQLConfig"),
    SourceConfig("salesforce", "SalesforceConfig", (
        ConfigField("instance_url", "str", nullable=True, strip_scheme=True,
                    description="Instance domain (filled from the OAuth answer when left out)."),
    )),
    _empty("sharepoint", "SharePointConfig"),
    SourceConfig("shopify", "ShopifyConfig", (
        ConfigField("shop_domain", "str", required=True, min_length=3, description="like my-store.myshopify.com"),
    )),
    _empty("slack", "SlackConfig"),
    _empty("stripe", "StripeConfig"),
    _empty("teams", "TeamsConfig"),
    _empty("todoist", "TodoistConfig"),
    _empty("trello", "TrelloConfig"),
    SourceConfig("zendesk", "ZendeskConfig", (
        ConfigField("subdomain", "str", required=True, description="mycompany, not mycompany.zendesk.com"),
        ConfigField("exclude_closed_tickets", "bool", nullable=True, default=False),
    )),
]}


def defaults(short_name: str) -> dict[str, Any]:
    source = SOURCES.get(short_name)
    return source.defaults() if source else {}


def normalise(short_name: str, config: dict[str, Any]) -> dict[str, Any]:
    """What the class's validators would store for each valid value (commas split, dates with
    ``/``, scheme stripped); invalid values are left for the server to refuse."""
    source = SOURCES.get(short_name)
    if source is None:
        return dict(config)
    by_name = {f.name: f for f in source.fields}
    out = {}
    for key, value in config.items():
        f = by_name.get(key)
        if f is None:
            out[key] = value
            continue
        checked, problem = _check(f, _coerce(f, value))
        out[key] = value if problem else checked
    return out


# -- validation, as the pydantic class does it (used by the emulator) ------------------------------
class ConfigInvalid(ValueError):
    """The class refused the config; ``problems`` are ``field: message`` strings."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def _coerce(f: ConfigField, value: Any) -> Any:
    if f.split_commas and isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    if f.strip_scheme and isinstance(value, str):
        for scheme in ("https://", "http://"):
            if value.startswith(scheme):
                return value[len(scheme):]
    return value


def _check(f: ConfigField, value: Any) -> tuple[Any, str | None]:
    if value is None:
        return (None, None) if f.nullable else (None, "Input should be a valid " + _type_word(f))
    if f.type == "str":
        if not isinstance(value, str):
            return None, "Input should be a valid string"
        if f.min_length is not None and len(value) < f.min_length:
            return None, f"String should have at least {f.min_length} characters"
        if f.pattern is not None and not re.search(f.pattern[:-1] + r"\Z" if f.pattern.endswith("$") else f.pattern,
                                                   value):
            return None, f"String should match pattern '{f.pattern}'"
        if f.strip:
            value = value.strip()
        if f.slash_dates and value:
            value = value.replace("-", "/")
        return value, None
    if f.type == "bool":
        return (value, None) if isinstance(value, bool) else (None, "Input should be a valid boolean")
    if f.type == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            return None, "Input should be a valid integer"
        if f.ge is not None and value < f.ge:
            return None, f"Input should be greater than or equal to {f.ge}"
        if f.le is not None and value > f.le:
            return None, f"Input should be less than or equal to {f.le}"
        return value, None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        return None, "Input should be a valid list of strings"
    if f.min_length is not None and len(value) < f.min_length:
        return None, f"List should have at least {f.min_length} item after validation, not {len(value)}"
    return list(value), None


def _type_word(f: ConfigField) -> str:
    return {"str": "string", "bool": "boolean", "int": "integer", "list": "list"}[f.type]


def model_dump(short_name: str, config: dict[str, Any]) -> dict[str, Any]:
    """Validate ``config`` through the source's class; return every field (unknown keys dropped)."""
    source = SOURCES.get(short_name, SourceConfig(short_name, "SourceConfig"))
    out: dict[str, Any] = {}
    problems: list[str] = []
    for f in source.fields:
        if f.name not in config:
            if f.required:
                problems.append(f"{f.name}: Field required")
            else:
                out[f.name] = copy.deepcopy(f.default)
            continue
        value, problem = _check(f, _coerce(f, config[f.name]))
        if problem:
            problems.append(f"{f.name}: {problem}")
        else:
            out[f.name] = value
    if problems:
        raise ConfigInvalid(problems)
    return out


# -- the manifest schema's per-source scope rules --------------------------------------------------
def scope_rule(source: SourceConfig) -> dict[str, Any]:
    """``if source is X then scope is exactly X's config fields`` (one ``allOf`` item)."""
    scope: dict[str, Any] = {
        "type": "object",
        "properties": {f.name: f.json_schema() for f in source.fields},
        "additionalProperties": False,
    }
    if source.required:
        scope["required"] = source.required
    then: dict[str, Any] = {"properties": {"scope": scope}}
    credentials = auth.credentials_rule(source.short_name)
    if credentials is not None:
        then["properties"]["credentials"] = credentials
    if source.required:
        then["required"] = ["scope"]
    return {"if": {"properties": {"source": {"const": source.short_name}}, "required": ["source"]},
            "then": then,
            "$comment": f"generated from {source.class_name} ({source.origin}) and the source's auth "
                        f"({auth.SOURCES[source.short_name].origin if source.short_name in auth.SOURCES else 'unknown'}); "
                        "python -m reconciler.providers.airweave_configs --write-schema"}


def scope_rules() -> list[dict[str, Any]]:
    return [scope_rule(s) for s in SOURCES.values()]


def _is_scope_rule(item: dict[str, Any]) -> bool:
    return "const" in (((item.get("if") or {}).get("properties") or {}).get("source") or {})


def apply_to_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """The manifest schema with connector_airweave's per-source rules and source enum regenerated."""
    schema = copy.deepcopy(schema)
    node = schema["$defs"]["connector_airweave"]
    node["allOf"] = [i for i in node["allOf"] if not _is_scope_rule(i)][:1] + scope_rules() + \
        [i for i in node["allOf"] if not _is_scope_rule(i)][1:]
    node["properties"]["source"]["enum"] = sorted(SOURCES)
    return schema


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    path = Path(__file__).resolve().parent.parent / "schemas" / "manifest.schema.json"
    current = json.loads(path.read_text(encoding="utf-8"))
    wanted = apply_to_schema(current)
    if argv != ["--write-schema"]:
        print(json.dumps(scope_rules(), indent=2))
        return 0
    if wanted != current:
        path.write_text(json.dumps(wanted, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
