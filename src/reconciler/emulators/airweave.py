"""Airweave emulator: collections, source connections and sync jobs, as the OpenAPI spec shapes them.

Paths are served at the root (the spec's server is ``https://api.airweave.ai``) and again under
``/v1`` (the docs show that prefix in some deployments). Auth is the ``x-api-key`` header, or
``Authorization: Bearer`` as the docs' curl examples use: none is 401, a wrong one 403.

What the real backend (commit 32cfea0c, run on loopback; ``shared/providers.md`` "Real-server
facts") does, and this emulator with it:
- request validation answers 422 ``{"errors": [{"body.name": "msg"}], ...}``; other errors
  ``{"detail": "<text>"}`` ("SourceConnection not found", "Collection not found").
- ``config`` goes through the source's config class (``providers/airweave_configs.py``, read from
  the real classes) and is stored and returned as ``model_dump()``; unknown keys are dropped; a
  refusal is 422 ``{"detail": "Invalid config fields: ..."}``. A PATCH ``config`` replaces it.
- a create without ``schedule`` gets ``*/5 * * * *`` (sources with continuous syncs) or daily at
  the creation minute; ``{"cron": null}`` at create means no sync at all (``/run``, ``/jobs``
  404); ``continuous`` is ignored; a removed schedule reads ``{cron: null, next_run: null}``;
  cron text is not normalised (two spaces: 422 "Invalid CRON expression").
- ``modified_at`` (no ``Z``) moves on name, description and config only.
- PATCH of ``config`` with ``schedule: {cron: null}`` is a 500 (MissingGreenlet), every time.
- lists are newest first; an unknown ``collection`` lists ``[]``; none lists the organisation.
- ``/run`` with a job pending or running is 400; cancelling a pending job is ``cancelled`` at
  once, cancelling it again 400.
- each source's auth methods, direct credential fields and whether it syncs continuously (which
  picks the server's default schedule) are its real decorator's (``providers/airweave_auth.py``):
  GitLab is OAuth only (no personal access token); a direct credential the auth config class does
  not have is ignored, so a misspelt one is its required field missing (422).
- a GitHub create checks the repository and branch (``EmulatorConfig.github_repos``): unknown is
  400 "Not found (404): Not Found".

Credentials are validated and then forgotten: the store keeps only which fields were given and
when, so neither a response nor ``/_emulator/state`` can ever carry a secret.
"""
from __future__ import annotations

import json
import re
import secrets
import time
import uuid
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from typing import Any, Awaitable, Callable

from croniter import croniter
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..providers import airweave_auth as auth_table
from ..providers import airweave_configs as configs
from .base import EmulatorConfig, JobClock, JSONResponse, Store, base_url, new_id

PAGE_LIMIT_MAX = 1000
PAGE_LIMIT_DEFAULT = 100
READABLE_ID = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")


# the catalogue: every source of the config table, with its decorator's auth methods, direct auth
# fields and continuous flag (``providers/airweave_auth.py``, read from the real sources/<name>.py)
SourceInfo = auth_table.SourceAuth
SOURCES: dict[str, SourceInfo] = {name: auth_table.SOURCES[name] for name in configs.SOURCES}
assert set(auth_table.SOURCES) == set(configs.SOURCES), "the auth table and the config table name the same sources"
CONTINUOUS_CRON = "*/5 * * * *"  # what the server picks when a create names no schedule
CRON_TEXT = re.compile(r"^\S+ \S+ \S+ \S+ \S+$")  # single spaces: the server does not normalise
NO_SYNC = "No sync found for this source connection"

# authentication variants, told apart by their marker field as the platform auto-detects them
AUTH_FIELDS: dict[str, frozenset[str]] = {
    "direct": frozenset({"credentials"}),
    "oauth_token": frozenset({"access_token", "refresh_token", "expires_at"}),
    "auth_provider": frozenset({"provider_readable_id", "provider_config"}),
    "oauth_browser": frozenset({"redirect_uri", "client_id", "client_secret", "consumer_key", "consumer_secret"}),
}

# base.JobClock status -> the spec's SyncJobStatus
JOB_STATUS = {"queued": "pending", "running": "running", "completed": "completed", "failed": "failed",
              "cancelled": "cancelled"}


class ApiError(Exception):
    """An error answered as FastAPI would: 422 with a list of details, else a string detail."""

    def __init__(self, status: int, detail: Any) -> None:
        super().__init__(str(detail))
        self.status = status
        self.detail = detail


def _err(loc: list[Any], msg: str, type_: str) -> dict[str, Any]:
    return {"loc": loc, "msg": msg, "type": type_}


class Validator:
    """Collects pydantic-style errors so one 422 lists every problem, like the platform does."""

    def __init__(self) -> None:
        self.errors: list[dict[str, Any]] = []

    def fail(self, loc: list[Any], msg: str, type_: str) -> None:
        self.errors.append(_err(loc, msg, type_))

    def string(self, body: dict, key: str, loc: list[Any], *, required: bool = False, nullable: bool = True,
               min_len: int | None = None, max_len: int | None = None, pattern: re.Pattern | None = None) -> Any:
        if key not in body:
            if required:
                self.fail(loc + [key], "Field required", "missing")
            return None
        value = body[key]
        if value is None and nullable and not required:
            return None
        if not isinstance(value, str):
            self.fail(loc + [key], "Input should be a valid string", "string_type")
            return None
        if min_len is not None and len(value) < min_len:
            self.fail(loc + [key], f"String should have at least {min_len} characters", "string_too_short")
        if max_len is not None and len(value) > max_len:
            self.fail(loc + [key], f"String should have at most {max_len} characters", "string_too_long")
        if pattern is not None and not pattern.match(value):
            self.fail(loc + [key], f"String should match pattern '{pattern.pattern}'", "string_pattern_mismatch")
        return value

    def mapping(self, body: dict, key: str, loc: list[Any]) -> dict | None:
        value = body.get(key)
        if value is None:
            return None
        if not isinstance(value, dict):
            self.fail(loc + [key], "Input should be a valid dictionary", "dict_type")
            return None
        return value

    def boolean(self, body: dict, key: str, loc: list[Any]) -> bool | None:
        value = body.get(key)
        if value is None:
            return None
        if not isinstance(value, bool):
            self.fail(loc + [key], "Input should be a valid boolean, unable to interpret input", "bool_parsing")
            return None
        return value

    def check(self) -> None:
        if self.errors:
            raise ApiError(422, self.errors)


def now_iso() -> str:
    """The server's timestamps: naive UTC, no ``Z``."""
    return datetime.now(timezone.utc).replace(tzinfo=None).isoformat(timespec="microseconds")


def _request_errors(details: list[dict[str, Any]]) -> dict[str, Any]:
    """The server's 422 for request validation: one ``{"loc.path": "msg"}`` per problem."""
    return {"errors": [{".".join(str(p) for p in d["loc"]): d["msg"]} for d in details],
            "message": "Request validation failed"}


def _query_int(request: Request, name: str, default: int, minimum: int, maximum: int | None) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    loc = ["query", name]
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(422, [_err(loc, "Input should be a valid integer, unable to parse string as an integer",
                                  "int_parsing")]) from None
    if value < minimum:
        raise ApiError(422, [_err(loc, f"Input should be greater than or equal to {minimum}", "greater_than_equal")])
    if maximum is not None and value > maximum:
        raise ApiError(422, [_err(loc, f"Input should be less than or equal to {maximum}", "less_than_equal")])
    return value


# the form str(uuid.UUID(...)) gives: a path already in it is returned as it is (every detail GET
# asks; parsing it back and forth was a twentieth of one)
CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _path_uuid(request: Request, name: str) -> str:
    raw = request.path_params[name]
    if CANONICAL_UUID.fullmatch(raw):
        return raw
    try:
        return str(uuid.UUID(raw))
    except ValueError:
        raise ApiError(422, [_err(["path", name], "Input should be a valid UUID, invalid character: expected an "
                                  "optional prefix of `urn:uuid:` followed by [0-9a-fA-F-]", "uuid_parsing")]) from None


async def _json_body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    try:
        body = json.loads(raw or b"null")
    except ValueError as exc:
        raise ApiError(422, [_err(["body", getattr(exc, "pos", 0)], "JSON decode error", "json_invalid")]) from None
    if body is None:
        raise ApiError(422, [_err(["body"], "Field required", "missing")])
    if not isinstance(body, dict):
        raise ApiError(422, [_err(["body"], "Input should be a valid dictionary or object to extract fields from",
                                  "model_attributes_type")])
    return body


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _next_run(cron: str | None) -> str | None:
    if not cron:
        return None
    # a five-field cron fires on minute boundaries: every moment of one minute has the same next run
    return _next_run_after(cron, datetime.now(timezone.utc).replace(second=0, microsecond=0))


@lru_cache(maxsize=4096)
def _next_run_after(cron: str, minute: datetime) -> str:
    # parsing the expression was a fifth of the emulator's CPU per create or detail GET
    nxt = croniter(cron, minute + timedelta(seconds=1)).get_next(datetime)
    return nxt.isoformat().replace("+00:00", "Z")


@lru_cache(maxsize=4096)
def _valid_cron(cron: str) -> bool:
    return bool(CRON_TEXT.match(cron) and croniter.is_valid(cron))


class Airweave:
    """The platform's behaviour over a :class:`Store`; handlers below only translate HTTP."""

    def __init__(self, config: EmulatorConfig) -> None:
        self.config = config
        self.page_max = config.page_limit_max or PAGE_LIMIT_MAX
        self.clock = JobClock(config.sync_duration, config.sync_fail)
        self.store = Store("airweave", config.data_dir,
                           {"organization_id": new_id(), "collections": {}, "connections": {}, "jobs": {},
                            "oauth_codes": {}})
        with self.store.lock:
            for target in config.targets:
                if target not in self.store.data["collections"]:
                    self._new_collection(target, target)
            self.store.save()

    # -- collections ----------------------------------------------------------------------
    def _new_collection(self, name: str, readable_id: str) -> dict[str, Any]:
        now = now_iso()
        record = {"name": name, "readable_id": readable_id, "id": new_id(), "created_at": now, "modified_at": now,
                  "organization_id": self.store.data["organization_id"], "created_by_email": None,
                  "modified_by_email": None, "vector_size": 3072, "embedding_model_name": "text-embedding-3-large",
                  "sync_config": None}
        self.store.data["collections"][readable_id] = record
        return record

    def collection_view(self, record: dict[str, Any]) -> dict[str, Any]:
        members = [c for c in self.store.data["connections"].values()
                   if c["readable_collection_id"] == record["readable_id"]]
        return {**record, "status": "ACTIVE" if members else "NEEDS SOURCE",
                "source_connection_summaries": [{"short_name": c["short_name"], "name": c["name"]} for c in members]}

    def collection(self, readable_id: str) -> dict[str, Any]:
        record = self.store.data["collections"].get(readable_id)
        if record is None:
            raise ApiError(404, "Collection not found")
        return record

    def create_collection(self, body: dict[str, Any]) -> dict[str, Any]:
        v = Validator()
        name = v.string(body, "name", ["body"], required=True, min_len=4, max_len=64)
        readable_id = v.string(body, "readable_id", ["body"], pattern=READABLE_ID)
        v.check()
        if readable_id is None:
            slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "collection"
            readable_id = f"{slug}-{secrets.token_hex(3)[:5]}"
        if readable_id in self.store.data["collections"]:
            raise ApiError(422, [_err(["body", "readable_id"],
                                      f"Value error, Collection with readable_id '{readable_id}' already exists",
                                      "value_error")])
        return self._new_collection(name, readable_id)

    # -- source connections ---------------------------------------------------------------
    def connection(self, conn_id: str) -> dict[str, Any]:
        record = self.store.data["connections"].get(conn_id)
        if record is None:
            raise ApiError(404, "SourceConnection not found")
        return record

    def _schedule(self, v: Validator, body: dict[str, Any]) -> dict[str, Any] | None:
        """The schedule a body asks for: None (not given), or ``{"cron": str | None}`` where an
        ignored ``continuous`` counts as no cron."""
        if "schedule" not in body:
            return None
        schedule = body["schedule"]
        if schedule is None:
            return {"cron": None}
        if not isinstance(schedule, dict):
            v.fail(["body", "schedule"], "Input should be a valid dictionary", "dict_type")
            return None
        loc = ["body", "schedule"]
        cron = v.string(schedule, "cron", loc)
        v.boolean(schedule, "continuous", loc)
        v.string(schedule, "cursor_field", loc)
        if cron is not None and not _valid_cron(cron):
            v.check()
            raise ApiError(422, f"Invalid CRON expression: {cron!r}")
        return {"cron": cron}  # continuous is ignored: it reads back as no schedule

    def _config(self, short_name: str, config: Any) -> dict[str, Any]:
        try:
            return configs.model_dump(short_name, config)
        except configs.ConfigInvalid as exc:
            raise ApiError(422, f"Invalid config fields: {exc}") from None

    def _check_github(self, config: dict[str, Any]) -> None:
        """The create's look-up of the repository (and branch) on GitHub."""
        repo, branch = config.get("repo_name") or "", config.get("branch") or ""
        known = self.config.github_repos
        if known is None:
            found = "not-found" not in repo.lower() and branch != "not-found"
        else:
            found = repo in known and (not branch or not known[repo] or branch in known[repo])
        if not found:
            raise ApiError(400, "Not found (404): Not Found")

    def _authentication(self, v: Validator, body: dict[str, Any], source: SourceInfo | None) -> dict[str, Any] | None:
        """Validate an authentication object; return what may be stored (never a secret value)."""
        auth = v.mapping(body, "authentication", ["body"])
        if auth is None:
            return None
        loc = ["body", "authentication"]
        if "credentials" in auth:
            method = "direct"
        elif "access_token" in auth:
            method = "oauth_token"
        elif "provider_readable_id" in auth:
            method = "auth_provider"
        else:
            method = "oauth_browser"
        for key in auth:
            if key not in AUTH_FIELDS[method]:
                v.fail(loc + [key], "Extra inputs are not permitted", "extra_forbidden")
        stored: dict[str, Any] = {"method": method, "credential_fields": []}
        if method == "direct":
            creds = auth["credentials"]
            if not isinstance(creds, dict):
                v.fail(loc + ["credentials"], "Input should be a valid dictionary", "dict_type")
                return stored
            for field_name in source.required if source else ():
                if creds.get(field_name) in (None, ""):
                    v.fail(loc + ["credentials", field_name], "Field required", "missing")
            stored["credential_fields"] = sorted(creds)
        elif method == "oauth_token":
            v.string(auth, "access_token", loc, required=True, min_len=1)
            v.string(auth, "refresh_token", loc)
            expires_at = v.string(auth, "expires_at", loc)
            if expires_at is not None:
                try:
                    datetime.fromisoformat(expires_at.replace("Z", "+00:00"))
                    stored["expires_at"] = expires_at
                except ValueError:
                    v.fail(loc + ["expires_at"], "Input should be a valid datetime", "datetime_from_date_parsing")
            stored["credential_fields"] = sorted(k for k in auth if k != "expires_at" and auth[k] is not None)
        elif method == "auth_provider":
            stored["provider_readable_id"] = v.string(auth, "provider_readable_id", loc, required=True)
            v.mapping(auth, "provider_config", loc)
        else:
            for key in AUTH_FIELDS["oauth_browser"]:
                v.string(auth, key, loc)
            if auth.get("client_id") and auth.get("client_secret"):
                stored["method"] = "oauth_byoc"
        allowed = source is None or (source.byoc() if stored["method"] == "oauth_byoc"
                                     else stored["method"] in source.methods)
        if not allowed:
            v.fail(loc, f"Value error, Source '{source.name}' does not support authentication method "
                        f"'{stored['method']}' (supported: {', '.join(source.methods)})", "value_error")
        return stored

    def create_connection(self, body: dict[str, Any], base_url: str) -> dict[str, Any]:
        v = Validator()
        short_name = v.string(body, "short_name", ["body"], required=True, nullable=False)
        collection_id = v.string(body, "readable_collection_id", ["body"], required=True, nullable=False)
        name = v.string(body, "name", ["body"], min_len=4, max_len=42)
        description = v.string(body, "description", ["body"], max_len=255)
        config = v.mapping(body, "config", ["body"])
        sync_immediately = v.boolean(body, "sync_immediately", ["body"])
        redirect_url = v.string(body, "redirect_url", ["body"])
        v.check()  # the source and collection lookups below need well-formed values
        source = SOURCES.get(short_name)
        if source is None:
            raise ApiError(404, f"Source '{short_name}' not found")
        self.collection(collection_id)
        schedule = self._schedule(v, body)
        auth = self._authentication(v, body, source)
        if auth is None:
            if "oauth_browser" not in source.methods:
                raise ApiError(400, f"Source '{short_name}' does not support this authentication method "
                                    f"(browser OAuth); supported: {', '.join(source.methods)}")
            auth = {"method": "oauth_browser", "credential_fields": []}
        browser = auth["method"] in ("oauth_browser", "oauth_byoc")
        if browser and sync_immediately:
            v.fail(["body", "sync_immediately"], "Value error, sync_immediately cannot be true for OAuth browser "
                                                 "flows; the first sync starts after authentication", "value_error")
        v.check()
        stored_config = self._config(short_name, config or {})
        if short_name == "github":
            self._check_github(stored_config)
        now = now_iso()
        if schedule is None:  # the server picks one
            if source.continuous:
                schedule = {"cron": CONTINUOUS_CRON}
            else:
                moment = datetime.now(timezone.utc)
                schedule = {"cron": f"{moment.minute} {moment.hour} * * *"}
        # a connection created with cron null gets no sync object: nothing can run it
        has_sync = schedule["cron"] is not None
        conn_id = new_id()
        details = {"method": auth["method"], "authenticated": not browser, "authenticated_at": None if browser else now,
                   "expires_at": auth.get("expires_at"), "auth_url": None, "auth_url_expires": None,
                   "redirect_url": redirect_url if browser else None,
                   "provider_readable_id": auth.get("provider_readable_id"), "credential_fields": auth["credential_fields"]}
        if browser:
            code = secrets.token_urlsafe(12)
            self.store.data["oauth_codes"][code] = conn_id
            details["auth_url"] = f"{base_url}source-connections/authorize/{code}"
            details["auth_url_expires"] = (datetime.now(timezone.utc) + timedelta(minutes=30)).isoformat().replace("+00:00", "Z")
        record = {"id": conn_id, "name": name or f"{source.name} Connection", "description": description,
                  "short_name": short_name, "readable_collection_id": collection_id, "config": stored_config,
                  "schedule": schedule if has_sync else None, "auth": details, "created_at": now, "modified_at": now,
                  "sync_id": new_id() if has_sync and not browser else None, "has_sync": has_sync,
                  "federated_search": False}
        self.store.data["connections"][conn_id] = record
        self.store.data["jobs"][conn_id] = []
        if record["sync_id"] and (sync_immediately is None or sync_immediately):
            self._start_job(record)
        return record

    def update_connection(self, record: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
        v = Validator()
        source = SOURCES.get(record["short_name"])
        known = {k: body[k] for k in ("name", "description", "config", "schedule", "authentication") if k in body}
        if not known:  # unknown keys are dropped, and then nothing is left
            raise ApiError(422, [_err(["body"], "Value error, At least one field must be provided", "value_error")])
        name = v.string(body, "name", ["body"], min_len=4, max_len=42)
        description = v.string(body, "description", ["body"], max_len=255)
        config = v.mapping(body, "config", ["body"])
        schedule = self._schedule(v, body)
        auth = self._authentication(v, body, source)
        if auth is not None and auth["method"] not in ("direct", "oauth_token"):
            v.fail(["body", "authentication"], "Value error, only direct credentials or OAuth tokens can be updated",
                   "value_error")
        v.check()
        stored_config = self._config(record["short_name"], config or {}) if "config" in body else None
        if stored_config is not None and schedule is not None and schedule["cron"] is None:
            # the real server's bug: the config write and the schedule removal in one session
            raise ApiError(500, "Internal Server Error")
        # "omitted fields retain their current values"; the whole config is replaced
        if name is not None:
            record["name"] = name
        if "description" in body:
            record["description"] = description
        if stored_config is not None:
            record["config"] = stored_config
        if schedule is not None:
            record["schedule"] = schedule
            if schedule["cron"] is not None and record["sync_id"] is None and record["auth"]["authenticated"]:
                record["sync_id"], record["has_sync"] = new_id(), True
        if auth is not None:
            now = now_iso()
            record["auth"].update({"method": auth["method"], "authenticated": True, "authenticated_at": now,
                                   "expires_at": auth.get("expires_at"), "auth_url": None, "auth_url_expires": None,
                                   "credential_fields": auth["credential_fields"]})
            if record.get("has_sync", True):
                record["sync_id"] = record["sync_id"] or new_id()
        if {"name", "description", "config"} & set(body):  # a schedule change does not move it
            record["modified_at"] = now_iso()
        return record

    def delete_connection(self, record: dict[str, Any]) -> dict[str, Any]:
        view = self.connection_view(record)
        for job in self.store.data["jobs"].get(record["id"], []):
            self.clock.cancel(job)  # the platform stops a running sync before deleting
        del self.store.data["connections"][record["id"]]
        self.store.data["jobs"].pop(record["id"], None)
        return view

    def complete_browser_auth(self, code: str) -> dict[str, Any]:
        conn_id = self.store.data["oauth_codes"].pop(code, None)
        record = self.store.data["connections"].get(conn_id) if conn_id else None
        if record is None:
            raise ApiError(404, "Authorization link not found or expired")
        now = now_iso()
        record["auth"].update({"authenticated": True, "authenticated_at": now, "auth_url": None,
                               "auth_url_expires": None})
        if record.get("has_sync", True):
            record["sync_id"] = record["sync_id"] or new_id()
            self._start_job(record)  # the first sync starts once a person completes the flow
        return record

    # -- jobs -----------------------------------------------------------------------------
    def _start_job(self, record: dict[str, Any]) -> dict[str, Any]:
        job = self.clock.new()
        self.store.data["jobs"].setdefault(record["id"], []).append(job)
        return job

    def _active_job(self, record: dict[str, Any]) -> dict[str, Any] | None:
        for job in reversed(self.store.data["jobs"].get(record["id"], [])):
            if self.clock.view(job)["status"] in ("queued", "running"):
                return job
        return None

    def run(self, record: dict[str, Any]) -> dict[str, Any]:
        if not record["auth"]["authenticated"]:
            raise ApiError(400, "Source connection is not authenticated; complete authentication first")
        self.sync_of(record)
        if self._active_job(record) is not None:
            raise ApiError(400, "Cannot start new sync: a sync job is already pending")
        return self._start_job(record)

    def sync_of(self, record: dict[str, Any]) -> str:
        if record["sync_id"] is None:
            raise ApiError(404, NO_SYNC)
        return record["sync_id"]

    def job(self, record: dict[str, Any], job_id: str) -> dict[str, Any]:
        for job in self.store.data["jobs"].get(record["id"], []):
            if job["id"] == job_id:
                return job
        raise ApiError(404, "Sync job not found")

    def cancel(self, record: dict[str, Any], job: dict[str, Any]) -> dict[str, Any]:
        status = self.clock.view(job)["status"]
        if not self.clock.cancel(job):
            raise ApiError(400, f"Cannot cancel job in {JOB_STATUS[status]} state")
        view = self.job_view(record["id"], job)
        # a pending job is cancelled at once; a running one is acknowledged by its worker later
        view["status"] = "cancelled" if status == "queued" else "cancelling"
        return view

    def job_view(self, conn_id: str, job: dict[str, Any]) -> dict[str, Any]:
        state = self.clock.view(job)
        records = state["records"]
        inserted = records * 3 // 4
        status = JOB_STATUS[state["status"]]
        if state["finished_at"]:
            end = datetime.fromisoformat(state["finished_at"].replace("Z", "+00:00")).timestamp()
        else:
            end = time.time()
        return {"id": job["id"], "source_connection_id": conn_id, "status": status,
                "started_at": state["started_at"], "completed_at": state["finished_at"],
                "duration_seconds": None if state["started_at"] is None else round(max(0.0, end - job["created"]), 3),
                "entities_inserted": inserted, "entities_updated": records - inserted, "entities_deleted": 0,
                "entities_failed": 1 if status == "failed" else 0, "error": state["error"],
                "error_details": {"stage": "fetch", "retryable": True} if status == "failed" else None}

    # -- views ----------------------------------------------------------------------------
    def _status(self, record: dict[str, Any], jobs: list[dict[str, Any]]) -> str:
        if not record["auth"]["authenticated"]:
            return "pending_auth"
        if not jobs:
            return "active"
        last = jobs[-1]["status"]
        if last in ("pending", "running", "created"):
            return "syncing"
        return "error" if last == "failed" else "active"

    def _jobs_summary(self, record: dict[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]], int]:
        """(jobs, completed newest first, entities indexed)."""
        jobs = [self.job_view(record["id"], j) for j in self.store.data["jobs"].get(record["id"], [])]
        completed = [j for j in reversed(jobs) if j["status"] == "completed"]
        # every run re-reads the whole source: the index holds what the latest completed run saw
        total = completed[0]["entities_inserted"] + completed[0]["entities_updated"] if completed else 0
        return jobs, completed, total

    def connection_view(self, record: dict[str, Any]) -> dict[str, Any]:
        jobs, completed, total = self._jobs_summary(record)
        last = jobs[-1] if jobs else None
        auth = {k: v for k, v in record["auth"].items() if k != "credential_fields"}
        schedule = record["schedule"]
        return {
            "id": record["id"], "organization_id": self.store.data["organization_id"], "name": record["name"],
            "description": record["description"], "short_name": record["short_name"],
            "readable_collection_id": record["readable_collection_id"], "status": self._status(record, jobs),
            "created_at": record["created_at"], "modified_at": record["modified_at"], "auth": auth,
            "config": record["config"],
            "schedule": None if schedule is None else {"cron": schedule["cron"], "next_run": _next_run(schedule["cron"]),
                                                       "continuous": False, "cursor_field": None,
                                                       "cursor_value": None},
            "sync": None if not jobs else {
                "total_runs": len(jobs), "successful_runs": len(completed),
                "failed_runs": sum(1 for j in jobs if j["status"] == "failed"),
                "last_job": None if last is None else {k: last[k] for k in (
                    "id", "status", "started_at", "completed_at", "duration_seconds", "entities_inserted",
                    "entities_updated", "entities_deleted", "entities_failed", "error")}},
            "sync_id": record["sync_id"],
            "entities": None if not jobs else {"total_entities": total, "by_type": {} if not completed else {
                f"{record['short_name']}_entity": {"count": total, "last_updated": completed[0]["completed_at"]}}},
            "federated_search": record["federated_search"],
            "error_category": "sync_failed" if last is not None and last["status"] == "failed" else None,
            "claim_token": None,
        }

    def list_item(self, record: dict[str, Any]) -> dict[str, Any]:
        # built from the record directly: a full detail view (schedule next_run via croniter) per
        # item made the emulator, not the client, the bottleneck of large plans
        jobs, _completed, total = self._jobs_summary(record)
        return {"id": record["id"], "name": record["name"], "short_name": record["short_name"],
                "readable_collection_id": record["readable_collection_id"], "created_at": record["created_at"],
                "modified_at": record["modified_at"], "is_authenticated": record["auth"]["authenticated"],
                "entity_count": total, "federated_search": record["federated_search"],
                "auth_method": record["auth"]["method"], "status": self._status(record, jobs)}


Handler = Callable[[Request, Airweave], Awaitable[Any]]


def create_app(config: EmulatorConfig) -> Starlette:
    platform = Airweave(config)

    def endpoint(handler: Handler, *, public: bool = False) -> Callable[[Request], Awaitable[Response]]:
        async def run(request: Request) -> Response:
            try:
                if not public:
                    _authorize_request(request, config.api_key)
                with platform.store.lock:
                    result = await handler(request, platform)
                    if request.method != "GET" or public:
                        platform.store.save()
            except ApiError as exc:
                if exc.status == 422 and isinstance(exc.detail, list):
                    return JSONResponse(_request_errors(exc.detail), status_code=422)
                if exc.status == 500:
                    return Response("Internal Server Error", status_code=500, media_type="text/plain")
                return JSONResponse({"detail": exc.detail}, status_code=exc.status)
            return result if isinstance(result, Response) else JSONResponse(result)

        return run

    routes = []
    # starlette tries routes in order (a regex match each): the source-connection paths, which
    # nearly every request asks, come first; no other path matches theirs, so no answer changes
    for prefix in ("", "/v1"):
        routes += [
            Route(f"{prefix}/source-connections", endpoint(_connections), methods=["GET", "POST"]),
            Route(f"{prefix}/source-connections/authorize/{{code}}", endpoint(_authorize, public=True),
                  methods=["GET"]),
            Route(f"{prefix}/source-connections/{{source_connection_id}}", endpoint(_connection),
                  methods=["GET", "PATCH", "DELETE"]),
            Route(f"{prefix}/source-connections/{{source_connection_id}}/run", endpoint(_run), methods=["POST"]),
            Route(f"{prefix}/source-connections/{{source_connection_id}}/jobs", endpoint(_jobs), methods=["GET"]),
            Route(f"{prefix}/source-connections/{{source_connection_id}}/jobs/{{job_id}}/cancel", endpoint(_cancel),
                  methods=["POST"]),
            Route(f"{prefix}/sources", endpoint(_list_sources), methods=["GET"]),
            Route(f"{prefix}/sources/{{short_name}}", endpoint(_get_source), methods=["GET"]),
            Route(f"{prefix}/collections", endpoint(_collections), methods=["GET", "POST"]),
            Route(f"{prefix}/collections/{{readable_id}}", endpoint(_collection), methods=["GET", "PATCH", "DELETE"]),
        ]
    app = Starlette(routes=routes)
    app.state.store = platform.store
    app.state.platform = platform
    return app


def _authorize_request(request: Request, api_key: str) -> None:
    """No key: 401; a key that is not the organisation's: 403 (as the real server answers)."""
    given = request.headers.get("x-api-key")
    if given is None:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        given = token if scheme.lower() == "bearer" else None
    if given is None:
        raise ApiError(401, "Not authenticated: provide an API key in the x-api-key header")
    if not secrets.compare_digest(given.encode(), api_key.encode()):
        raise ApiError(403, "Invalid API key")


# -- handlers: HTTP in, platform call, JSON out ---------------------------------------------------
def _source_view(short_name: str, info: SourceInfo) -> dict[str, Any]:
    return {"name": info.name, "short_name": short_name, "class_name": f"{info.name.replace(' ', '')}Source",
            "auth_methods": list(info.methods), "supports_continuous": info.continuous,
            "auth_config_class": info.auth_class,
            "auth_fields": {"fields": [{"name": f.name, "title": f.name.replace("_", " ").title(), "type": "string",
                                        "required": f.required, "is_secret": True} for f in info.fields]},
            "config_fields": {"fields": [
                {"name": f.name, "title": f.name.replace("_", " ").title(), "type": _FIELD_TYPE[f.type],
                 "required": f.required} for f in configs.SOURCES[short_name].fields]}}


_FIELD_TYPE = {"str": "string", "bool": "boolean", "int": "number", "list": "array"}


async def _list_sources(request: Request, p: Airweave) -> Any:
    return [_source_view(k, v) for k, v in SOURCES.items()]


async def _get_source(request: Request, p: Airweave) -> Any:
    short_name = request.path_params["short_name"]
    if short_name not in SOURCES:
        raise ApiError(404, f"Source '{short_name}' not found")
    return _source_view(short_name, SOURCES[short_name])


async def _collections(request: Request, p: Airweave) -> Any:
    if request.method == "POST":
        return p.collection_view(p.create_collection(await _json_body(request)))
    skip = _query_int(request, "skip", 0, 0, None)
    limit = _query_int(request, "limit", PAGE_LIMIT_DEFAULT, 1, p.page_max)
    search = (request.query_params.get("search") or "").lower()
    items = [c for c in p.store.data["collections"].values()
             if not search or search in c["name"].lower() or search in c["readable_id"]]
    return [p.collection_view(c) for c in items[skip:skip + limit]]


async def _collection(request: Request, p: Airweave) -> Any:
    record = p.collection(request.path_params["readable_id"])
    if request.method == "GET":
        return p.collection_view(record)
    if request.method == "PATCH":
        body = await _json_body(request)
        v = Validator()
        name = v.string(body, "name", ["body"], min_len=4, max_len=64)
        v.check()
        if name is not None:
            record["name"] = name
        record["modified_at"] = now_iso()
        return p.collection_view(record)
    view = p.collection_view(record)
    for conn in [c for c in p.store.data["connections"].values() if c["readable_collection_id"] == record["readable_id"]]:
        p.delete_connection(conn)
    del p.store.data["collections"][record["readable_id"]]
    return view


async def _connections(request: Request, p: Airweave) -> Any:
    if request.method == "POST":
        body = await _json_body(request)
        return p.connection_view(p.create_connection(body, base_url(request)))
    collection = request.query_params.get("collection")
    skip = _query_int(request, "skip", 0, 0, None)
    limit = _query_int(request, "limit", PAGE_LIMIT_DEFAULT, 1, p.page_max)
    # an unknown collection lists as [] (no 404); no collection: the whole organisation; newest first
    items = [c for c in reversed(p.store.data["connections"].values())
             if collection is None or c["readable_collection_id"] == collection]
    return [p.list_item(c) for c in items[skip:skip + limit]]


async def _connection(request: Request, p: Airweave) -> Any:
    record = p.connection(_path_uuid(request, "source_connection_id"))
    if request.method == "GET":
        return p.connection_view(record)
    if request.method == "PATCH":
        return p.connection_view(p.update_connection(record, await _json_body(request)))
    return p.delete_connection(record)


async def _authorize(request: Request, p: Airweave) -> Any:
    record = p.complete_browser_auth(request.path_params["code"])
    return {"detail": f"Authorization complete for '{record['name']}'. You can close this window."}


async def _run(request: Request, p: Airweave) -> Any:
    record = p.connection(_path_uuid(request, "source_connection_id"))
    force = request.query_params.get("force_full_sync", "false").lower()
    if force not in ("true", "false", "1", "0"):
        raise ApiError(422, [_err(["query", "force_full_sync"], "Input should be a valid boolean, unable to "
                                  "interpret input", "bool_parsing")])
    return p.job_view(record["id"], p.run(record))


async def _jobs(request: Request, p: Airweave) -> Any:
    record = p.connection(_path_uuid(request, "source_connection_id"))
    p.sync_of(record)
    limit = _query_int(request, "limit", PAGE_LIMIT_DEFAULT, 1, PAGE_LIMIT_MAX)
    jobs = list(reversed(p.store.data["jobs"].get(record["id"], [])))  # newest first
    return [p.job_view(record["id"], j) for j in jobs[:limit]]


async def _cancel(request: Request, p: Airweave) -> Any:
    record = p.connection(_path_uuid(request, "source_connection_id"))
    job = p.job(record, _path_uuid(request, "job_id"))
    return p.cancel(record, job)
