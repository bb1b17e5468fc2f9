"""What each Airweave source takes as authentication, read from its real ``@source`` decorator.

One table for three readers: the emulator (which auth methods a create may use, which direct
credential fields are required, whether the server picks a five-minute schedule), the manifest
schema (``credentials`` of a direct-auth source are exactly its auth config class's fields, so a
misspelt field is an error at ``reconcile validate``, not a 422 at create) and the docs.

Sources (``airweave-ai/airweave``): each source's decorator in
``backend/airweave/platform/sources/<name>.py`` (``auth_methods``, ``supports_continuous``; left out
means ``False``) at the commit named per entry; the direct auth config classes in
``backend/airweave/platform/configs/auth.py`` (``GitHubAuthConfig`` ... ; ``BaseConfig`` keeps
pydantic's default of ignoring unknown keys, ``configs/_base.py@908fb64c``, so a misspelt field
reaches the server as a missing required one).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

SOURCES_PATH = "backend/airweave/platform/sources"
AUTH_PATH = "backend/airweave/platform/configs/auth.py"
# the stored auth.py versions: 071750e1 (GitHub, Stripe, Attio, Bitbucket, PostgreSQL, CTTI ...) and
# the later one that adds Coda's and Freshdesk's classes (the search index names it only by id)
AUTH_COMMIT = "071750e1cafb3287fe94b45c52afa70c12ad0f58"

OAUTH = ("oauth_browser", "oauth_token", "auth_provider")
DIRECT = ("direct", "auth_provider")


@dataclass(frozen=True, slots=True)
class AuthField:
    name: str
    required: bool = True


@dataclass(frozen=True, slots=True)
class SourceAuth:
    """One source's decorator facts. ``fields`` are the direct auth config class's fields;
    ``checked`` is False where the stored versions disagree on them (the manifest schema then
    leaves the credentials alone rather than refuse what the server may take)."""

    name: str  # the decorator's display name
    methods: tuple[str, ...]
    origin: str  # sources/<name>.py@commit the methods and continuous flag come from
    fields: tuple[AuthField, ...] = ()
    continuous: bool = False
    auth_class: str | None = None
    checked: bool = True

    @property
    def direct(self) -> bool:
        return "direct" in self.methods

    @property
    def required(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields if f.required)

    @property
    def field_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)

    def byoc(self) -> bool:
        """A bring-your-own-client browser flow: listed (``OAUTH_BYOC``) or, as this emulator
        decides where the decorator is silent, a variant of the browser flow it lists."""
        return "oauth_byoc" in self.methods or "oauth_browser" in self.methods


def _at(name: str, commit: str) -> str:
    return f"{SOURCES_PATH}/{name}.py@{commit[:8]}"


def _seen(name: str) -> str:
    """Read through the content search (excerpts of several stored versions, no commit named);
    every version seen agrees with the entry unless its comment says otherwise."""
    return f"{SOURCES_PATH}/{name}.py (stored versions)"


_API_KEY = (AuthField("api_key"),)
# BaseDatabaseAuthConfig: schema and tables have defaults ("public", "*")
_DATABASE = (AuthField("host"), AuthField("port"), AuthField("database"), AuthField("user"), AuthField("password"),
             AuthField("schema", required=False), AuthField("tables", required=False))

SOURCES: dict[str, SourceAuth] = {k: v for k, v in {
    "airtable": SourceAuth("Airtable", OAUTH, _at("airtable", "1c2fbf453161713021072afb04345f7a69ab4e8d")),
    "asana": SourceAuth("Asana", OAUTH, _at("asana", "01b633570587bf5b6bc83061bb7d212e3f80b297")),
    "attio": SourceAuth("Attio", DIRECT, _at("attio", "468af8258483f26dd6c23168e2869f3fd0f6e62d"), _API_KEY,
                        auth_class="AttioAuthConfig"),
    # BitbucketAuthConfig: an API token with the Atlassian email and the workspace (bitbucket.py
    # reads credentials.access_token, .email, .workspace, .repo_slug)
    "bitbucket": SourceAuth("Bitbucket", DIRECT, _at("bitbucket", "01b633570587bf5b6bc83061bb7d212e3f80b297"),
                            (AuthField("access_token"), AuthField("email"), AuthField("workspace"),
                             AuthField("repo_slug", required=False)), auth_class="BitbucketAuthConfig"),
    "box": SourceAuth("Box", OAUTH, _at("box", "0a135211242bd3a2b683ad5a70b9b9b2d6b794ea")),
    "clickup": SourceAuth("ClickUp", OAUTH, _at("clickup", "0a135211242bd3a2b683ad5a70b9b9b2d6b794ea")),
    "coda": SourceAuth("Coda", DIRECT, _at("coda", "468af8258483f26dd6c23168e2869f3fd0f6e62d"), _API_KEY,
                       auth_class="CodaAuthConfig"),
    "confluence": SourceAuth("Confluence", OAUTH, _at("confluence", "01b633570587bf5b6bc83061bb7d212e3f80b297")),
    "dropbox": SourceAuth("Dropbox", OAUTH, _at("dropbox", "01b633570587bf5b6bc83061bb7d212e3f80b297")),
    # FreshdeskAuthConfig: api_key (used as the Basic-auth user); FreshdeskConfig.domain is required
    "freshdesk": SourceAuth("Freshdesk", DIRECT, _at("freshdesk", "468af8258483f26dd6c23168e2869f3fd0f6e62d"),
                            _API_KEY, auth_class="FreshdeskAuthConfig"),
    "github": SourceAuth("GitHub", DIRECT, _at("github", "be287d883127ceac37295446730c492c89a88d10"),
                         (AuthField("personal_access_token"),), continuous=True, auth_class="GitHubAuthConfig"),
    # GitLabAuthConfig is OAuth2WithRefreshAuthConfig: no personal access token, no direct auth
    "gitlab": SourceAuth("GitLab", OAUTH, _at("gitlab", "468af8258483f26dd6c23168e2869f3fd0f6e62d")),
    "gmail": SourceAuth("Gmail", OAUTH, _seen("gmail"), continuous=True),
    # one stored version (with a cursor class) says supports_continuous=True; three say False
    "google_calendar": SourceAuth("Google Calendar", OAUTH,
                                  _seen("google_calendar")),
    "google_docs": SourceAuth("Google Docs", OAUTH + ("oauth_byoc",),
                              _at("google_docs", "36bea6e88f4148d37654526dd7c8af069bb0e397"), continuous=True),
    "google_drive": SourceAuth("Google Drive", OAUTH + ("oauth_byoc",),
                               _seen("google_drive"), continuous=True),
    "google_slides": SourceAuth("Google Slides", OAUTH + ("oauth_byoc",),
                                _at("google_slides", "ff909964875e8e3cbf75d3d0d679fd4bd6ad7332"), continuous=True),
    "hubspot": SourceAuth("HubSpot", OAUTH, _seen("hubspot")),
    "intercom": SourceAuth("Intercom", OAUTH, _seen("intercom")),
    "jira": SourceAuth("Jira", OAUTH, _at("jira", "f9a0e20bb5855db3050d36c6757d6bd606c6f15b")),
    # the stored linear.py versions disagree on supports_continuous (two say True); kept True
    "linear": SourceAuth("Linear", OAUTH, _seen("linear"), continuous=True),
    "monday": SourceAuth("Monday", OAUTH, _seen("monday")),
    "notion": SourceAuth("Notion", OAUTH, _at("notion", "bdb5a7ac26916597531930fae409a47307e66d9d")),
    # one stored version (with a cursor class) says supports_continuous=True; the other False
    "onedrive": SourceAuth("OneDrive", OAUTH, _seen("onedrive")),
    "outlook_calendar": SourceAuth("Outlook Calendar", OAUTH,
                                   _seen("outlook_calendar")),
    # this version's decorator leaves supports_continuous out (False); later ones say True
    "outlook_mail": SourceAuth("Outlook Mail", OAUTH, _at("outlook_mail", "e4f0b1210cc1673f12e14346efc5b2bd39eb5fde")),
    "postgresql": SourceAuth("PostgreSQL", DIRECT, _at("postgresql", "8bbfe10e18049b15f068365073656c8b077ff393"),
                             _DATABASE, continuous=True, auth_class="PostgreSQLAuthConfig"),
    "salesforce": SourceAuth("Salesforce", ("oauth_browser", "oauth_byoc"),
                             _at("salesforce", "be287d883127ceac37295446730c492c89a88d10")),
    "sharepoint": SourceAuth("SharePoint", OAUTH, _seen("sharepoint")),
    # stored versions disagree on ShopifyAuthConfig (access_token; later client_id + client_secret)
    "shopify": SourceAuth("Shopify", DIRECT, _at("shopify", "ceb207e7707c26b0120b58cc9b2f2cd7197c8f52"),
                          (AuthField("access_token"),), auth_class="ShopifyAuthConfig", checked=False),
    "slack": SourceAuth("Slack", OAUTH, _at("slack", "8bbfe10e18049b15f068365073656c8b077ff393")),
    "stripe": SourceAuth("Stripe", DIRECT, _at("stripe", "01b633570587bf5b6bc83061bb7d212e3f80b297"), _API_KEY,
                         auth_class="StripeAuthConfig"),
    "teams": SourceAuth("Microsoft Teams", OAUTH, _seen("teams")),
    "todoist": SourceAuth("Todoist", OAUTH, _seen("todoist")),
    "trello": SourceAuth("Trello", ("oauth_browser", "auth_provider"),
                         _at("trello", "0a135211242bd3a2b683ad5a70b9b9b2d6b794ea")),
    "zendesk": SourceAuth("Zendesk", OAUTH, _at("zendesk", "01b633570587bf5b6bc83061bb7d212e3f80b297")),
}.items()}


# -- the manifest schema's per-source credentials rule ---------------------------------------------
def _direct_only(credentials: dict[str, Any]) -> dict[str, Any]:
    """``if type is absent or direct then <credentials>``: ``type`` defaults to direct."""
    return {"if": {"properties": {"type": {"const": "direct"}}}, "then": credentials}


def credentials_rule(short_name: str) -> dict[str, Any] | None:
    """The ``credentials`` schema for one source, or None where the table does not know it."""
    auth = SOURCES.get(short_name)
    if auth is None or not auth.checked:
        return None
    if auth.direct:
        exact: dict[str, Any] = {
            "properties": {**{f: {} for f in auth.field_names}, "type": {}},
            "additionalProperties": False,
        }
        if auth.required:
            exact["required"] = list(auth.required)
        return _direct_only(exact)
    ways = {"oauth_token": "type: oauth_token with access_token (and refresh_token)",
            "oauth_browser": "type: oauth_browser (a person completes the OAuth flow)"}
    how = ", or ".join(ways[m] for m in ways if m in auth.methods) or "an auth provider"
    return _direct_only({"not": {}, "errorMessage": (
        f"{short_name} takes no direct credentials (its auth methods: {', '.join(auth.methods)}); "
        f"write {how}")})
