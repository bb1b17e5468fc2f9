"""Airweave adapter: source connections inside collections.

Mapping (the API is ``specs/airweave-openapi.json``; ``emulators/airweave.py`` serves it, with the
real server's behaviour at backend commit 32cfea0c, ``shared/providers.md`` "Real-server facts"):
- identity = ``name`` (the connector's name; Airweave allows 4-42 characters).
- ``source`` = ``short_name``, ``target`` = ``readable_collection_id``: neither can be PATCHed,
  so a change to either is a replace.
- ``scope`` = ``config``. The server validates it through the source's config class and returns
  ``model_dump()`` (every field, defaults included; unknown keys dropped). The live projection
  keeps every field; what the manifests do not declare is the platform's (field ownership), and
  :meth:`scope_defaults` (``airweave_configs.py``, read from the real classes) tells which values
  are defaults, so a removed key whose live value is its default plans nothing and ``import``
  leaves defaults out. The manifest schema allows exactly the class's keys. A PATCH of ``config`` replaces
  the whole config, so every config write sends the whole desired config plus the live values of
  keys the manifest does not own (``LiveConnector.unowned``) and of ``ignore_changes`` paths.
- ``description`` as is (absent when null).
- ``schedule``: ``{cron}`` -> ``{"cron": c}`` (spacing normalised: the server 422s on two
  spaces). A create without a schedule gets one picked by the server (every five minutes, or
  daily), so no ``schedule`` and ``manual: true`` are both sent as ``{"cron": null}``. **What
  ``manual`` means on Airweave:** no automatic syncs, and, because the server creates no sync
  object for a connection created with ``cron: null``, no syncs on demand either: ``sync``,
  ``status`` and ``sync_on_apply`` say the connector has no sync. Give it a (rare) cron to be
  able to sync it from the API. A schedule removed later reads ``{cron: null, next_run: null}``
  and projects as no schedule (that connection keeps its sync). ``continuous`` is refused at
  validate: the server ignores it (``schedule: null``), so it could never converge.
- ``credentials`` -> ``authentication``; the reserved key ``type`` picks the variant: ``direct``
  (default; ``{"credentials": {...}}``), ``oauth_token`` (access/refresh token, expiry),
  ``oauth_browser`` (no secrets; the connection waits in ``pending_auth`` for a person to open its
  ``auth_url``), ``auth_provider`` (``provider_readable_id`` + the rest as ``provider_config``).
  Direct credentials are exactly the source's auth config class's fields, and a source without
  direct auth refuses them: both checked by the manifest schema at validate (``airweave_auth.py``,
  read from each real ``sources/<name>.py``), since the server would answer 422 only at create.
- The list lacks config and schedule, so it is incomplete; ``modified_at`` is the version that
  tells the engine whether a detail GET is needed. It moves only on name, description or config,
  not on a schedule change: connectors that declare a schedule (``manual`` included) or last
  applied one are read every plan (:meth:`needs_detail`). A plan costs one list call per
  collection (per 1000 connectors) plus one GET per connector that declares or had a schedule or
  whose ``modified_at`` moved.
- Server bugs worked around: ``config`` and ``schedule: {cron: null}`` in one PATCH is a 500
  (MissingGreenlet) every time, so they go as two PATCHes, config first (each idempotent: a retry
  or a rerun after a crash between them repeats or finishes the work).
- Create has no idempotency key: a lost create surfaces as OutcomeUnknown and :meth:`lookup`
  finds it by name in its collection.
"""
from __future__ import annotations

import json
import sys
from collections import Counter, deque
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import nullcontext
from typing import Any, Generator, Iterable, Iterator

import httpx

from ..errors import NotFound, ProviderError
from ..http import seg
from ..model import Connector, LiveConnector, Schedule
from . import airweave_auth as auth_table
from . import airweave_configs as configs
from .base import Capabilities, ConnectorStatus, NothingToSync, Provider, SyncJob

# the platform's SyncJobStatus -> SyncJob.status; "cancelling" is not finished yet
JOB_STATUS = {"created": "queued", "pending": "queued", "running": "running", "cancelling": "running",
              "completed": "completed", "failed": "failed", "cancelled": "cancelled"}
PROGRESS_KEYS = ("entities_inserted", "entities_updated", "entities_deleted", "entities_failed")
AUTH_TYPES = ("direct", "oauth_token", "oauth_browser", "auth_provider")
NO_SYNC = ("has no sync on Airweave: it was created without a schedule, and Airweave creates no sync "
           "for such a connection; give it a schedule (a rare cron works) to sync it")
NO_SYNC_NOTE = NO_SYNC.removeprefix("has no sync on Airweave: ")
API_KEY_REJECTED = "API key rejected: check the provider's api_key (the x-api-key header)"


def _cron(text: str) -> str:
    return " ".join(text.split())  # spacing is not a change


def schedule_projection(schedule: dict[str, Any] | None) -> dict[str, Any] | None:
    """A ScheduleConfig/ScheduleDetails object in the normalised shape (None: no schedule)."""
    if not schedule:
        return None
    if schedule.get("continuous"):
        out: dict[str, Any] = {"continuous": True}
        if schedule.get("cursor_field"):
            out["cursor_field"] = schedule["cursor_field"]
        return out
    if schedule.get("cron"):
        return {"cron": _cron(schedule["cron"])}
    return None


def schedule_body(schedule: Schedule | None) -> dict[str, Any]:
    """The ScheduleConfig to send. ``{"cron": None}`` is the only way to say "no automatic syncs":
    without a schedule the server picks one."""
    if schedule is None or schedule.form == "manual":
        return {"cron": None}
    if schedule.form == "cron":
        return {"cron": _cron(schedule.cron or "")}
    # the manifest schema refuses both for airweave; a programmatic caller gets the same answer
    raise ProviderError(f"airweave takes cron or manual schedules, not {schedule.form} (the server ignores "
                        "continuous and has no interval form); write a cron, e.g. cron: \"*/5 * * * *\"")


def auth_type(connector: Connector) -> str:
    secret = connector.credentials.get("type")
    kind = secret.reveal() if secret is not None else "direct"
    if kind not in AUTH_TYPES:
        raise ProviderError(f"connector {connector.name!r}: credentials.type {kind!r} is not one of "
                            f"{', '.join(AUTH_TYPES)}")
    return kind


def authentication_body(connector: Connector) -> dict[str, Any] | None:
    """The authentication object built from credentials (values revealed only here)."""
    kind = auth_type(connector)
    values = {k: v.reveal() for k, v in connector.credentials.items() if k != "type"}
    if kind == "direct":
        return {"credentials": values} if values else None
    if kind == "oauth_token":
        return {k: values[k] for k in ("access_token", "refresh_token", "expires_at") if k in values}
    if kind == "auth_provider":
        provider = values.pop("provider_readable_id", None)
        return {"provider_readable_id": provider, **({"provider_config": values} if values else {})}
    # browser flow: only a bring-your-own OAuth client's fields travel
    return {k: values[k] for k in ("client_id", "client_secret", "redirect_uri") if k in values}


def sync_job(job: dict[str, Any]) -> SyncJob:
    return SyncJob(
        id=str(job["id"]),
        status=JOB_STATUS.get(job.get("status") or "", "running"),
        progress={k.removeprefix("entities_"): int(job.get(k) or 0) for k in PROGRESS_KEYS},
        error=job.get("error"),
        started_at=job.get("started_at"),
        finished_at=job.get("completed_at"),
    )


class AirweaveProvider(Provider):
    type = "airweave"
    capabilities = Capabilities(
        updatable=frozenset({"name", "description", "scope", "schedule", "credentials"}),
        replace_on=frozenset({"source", "target"}),
        schedule_forms=frozenset({"cron", "manual"}),
        list_is_complete=False,
        ownership_marker=False,
        can_sync=True,
        can_cancel_sync=True,
        create_before_destroy=True,  # names are not unique: the replacement is a second source connection
        default_url="https://api.airweave.ai",
    )
    page_size = 1000  # the API's cap for ``limit``
    _expected: dict[str, int] = {}  # connections per collection the state recorded (``recall``)
    # (the collections asked about, the readable ids found): asked beside a plan's listing (``list``)
    _collections_early: tuple[frozenset[str], Future[set[str]]] | None = None

    @classmethod
    def doc_notes(cls) -> list[str]:
        lines = [
            "- **What a plan costs**: one `GET /source-connections?collection=` per collection (per 1,000",
            "  connectors), plus one detail `GET` per connector whose `modified_at` moved since the state saw",
            "  it, and per connector that declares a `schedule` (`cron` or `manual`) or last applied one. The",
            "  real server does not move `modified_at` on a schedule change (backend 32cfea0c), so a schedule",
            "  changed in Airweave's UI is only seen by reading it; connectors without `schedule` cost",
            "  nothing beyond the list. 1,000 scheduled connectors: 1 list + 1,000 GETs; unscheduled: 1 list.",
            "- **`manual: true` and no `schedule`** are both created with `schedule: {cron: null}` (left out,",
            "  the server picks every five minutes, or daily). Airweave creates no sync object for such a",
            "  connection, so it never syncs, not even on demand: `sync`, `status` and `sync_on_apply` say it",
            "  has no sync. Give it a cron (a rare one works) to sync it through the API. `manual: true` owns",
            "  the schedule (one set in the UI is drift, the next apply removes it); without `schedule` the",
            "  schedule is the platform's after the create.",
            "- `continuous` is refused at validate: the server ignores it (`schedule: null`). Cron spacing is",
            "  normalised before sending (the server refuses two spaces).",
            "- **Whole-config writes**: a PATCH of `config` replaces it, so every config write sends the whole",
            "  declared config plus the live values of the keys the manifests do not own. A config change",
            "  together with a schedule removal goes as two PATCHes (the server answers 500 to both in one).",
            "- `401` (no key) and `403` (wrong key) both read \"API key rejected\".",
            f"- **`scope` keys** are the fields of each source's config class (`{configs.CONFIG_PATH}` in",
            f"  `airweave-ai/airweave` at {configs.CONFIG_COMMIT[:8]}, plus what server {configs.SERVER_COMMIT} had);",
            "  any other key is an error at validate (the server would drop it). `*` = required.",
            "- **`credentials`** follow the source's `@source` decorator and auth config class",
            f"  (`{auth_table.SOURCES_PATH}/<name>.py`, `{auth_table.AUTH_PATH}`@{auth_table.AUTH_COMMIT[:8]}):",
            "  a source with direct auth takes exactly its class's fields (without `type`, or `type: direct`),",
            "  so a misspelt or missing field is an error at validate naming the fields; a source without",
            "  direct auth (GitLab, Notion, Slack, ...) needs `type: oauth_token` or `type: oauth_browser`",
            "  (`type: auth_provider` needs `provider_readable_id`). Where the stored versions disagree on",
            "  the fields (Shopify) nothing is checked before the server.",
            "  `continuous` = the server picks every five minutes when a create names no schedule:",
            "",
            "| source | scope keys (default) | auth methods | direct credentials | continuous |",
            "|---|---|---|---|---|",
        ]
        for name, source in sorted(configs.SOURCES.items()):
            keys = ", ".join(f"`{f.name}`*" if f.required else f"`{f.name}` ({json.dumps(f.default)})"
                             for f in source.fields) or "none"
            info = auth_table.SOURCES[name]
            direct = ", ".join(f"`{f.name}`" + ("*" if f.required else "") for f in info.fields) or "-"
            if info.fields and not info.checked:
                direct += " (unchecked)"
            lines.append(f"| `{name}` | {keys} | {', '.join(info.methods)} | {direct} | "
                         f"{'yes' if info.continuous else 'no'} |")
        return lines

    def auth_headers(self) -> dict[str, str]:
        key = self.config.api_key
        return {"x-api-key": key.reveal()} if key else {}

    def error_message(self, response: httpx.Response) -> str:
        if response.status_code in (401, 403):  # missing key 401, wrong key 403: the same fix
            return API_KEY_REJECTED
        try:
            body = response.json()
        except ValueError:
            return response.text[:300] or response.reason_phrase
        if isinstance(body, dict) and isinstance(body.get("errors"), list):
            # the server's request validation: {"errors": [{"body.name": "msg"}, ...]}
            parts = []
            for item in body["errors"]:
                if isinstance(item, dict):
                    parts += [f"{str(k).removeprefix('body.')}: {v}" for k, v in item.items()]
                else:
                    parts.append(str(item))
            return "; ".join(parts)[:600]
        detail = body.get("detail") if isinstance(body, dict) else body
        if isinstance(detail, list):  # FastAPI's default shape: [{loc, msg, type}]
            parts = []
            for item in detail:
                if isinstance(item, dict):
                    loc = [str(p) for p in item.get("loc", [])]
                    if loc and loc[0] == "body":
                        loc = loc[1:]
                    parts.append(f"{'.'.join(loc) or 'body'}: {item.get('msg', '')}")
                else:
                    parts.append(str(item))
            return "; ".join(parts)
        return str(detail)[:300] if detail is not None else str(body)[:300]

    # -- identity and projection ------------------------------------------------------------
    def identity(self, connector: Connector) -> str:
        return connector.name

    def scope_defaults(self, source: str) -> dict[str, Any]:
        return configs.defaults(source)

    def _scope(self, source: str, config: dict[str, Any] | None) -> dict[str, Any]:
        # the live config is model_dump(): every field, defaults included (the platform's own
        # unless the manifests declare them); declared values are compared as the class stores them
        return configs.normalise(source, dict(config or {}))

    def desired_fields(self, connector: Connector) -> dict[str, Any]:
        fields: dict[str, Any] = {"source": connector.source, "target": connector.target}
        if connector.description is not None:
            fields["description"] = connector.description
        scope = self._scope(connector.source, connector.scope)
        if scope:
            fields["scope"] = scope
        if connector.schedule is not None:
            # manual is "no schedule" live; declared, it is owned (None: declared, not set), so a
            # cron set in the UI plans back to manual instead of being the platform's
            cron = connector.schedule.cron if connector.schedule.form == "cron" else None
            fields["schedule"] = {"cron": _cron(cron)} if cron is not None else None
        return fields

    def needs_detail(self, connector: Connector | None, last_fields: dict[str, Any] | None) -> bool:
        # modified_at does not move on a schedule change: whoever owns a schedule must look at it
        return (connector is not None and connector.schedule is not None) or "schedule" in (last_fields or {})

    def _from_item(self, item: dict[str, Any]) -> LiveConnector:
        """A list item: identity, source, target and version, not config or schedule."""
        # a list of 100,000 repeats a few sources, collections, statuses: one string each, not one per item
        source, target = sys.intern(item["short_name"]), sys.intern(item["readable_collection_id"])
        status, auth = (sys.intern(v) if isinstance(v, str) else v for v in (item.get("status"), item.get("auth_method")))
        modified, created = item.get("modified_at"), item.get("created_at")
        return LiveConnector(
            id=str(item["id"]), key=item["name"], name=item["name"], source=source, target=target,
            fields={"source": source, "target": target},
            complete=False, version=modified, status=status,
            # never modified: created_at is the version (one string, which the engine shares with the state's)
            extra={"auth_method": auth} if created == modified else {"auth_method": auth, "created_at": created},
        )

    def _from_detail(self, body: dict[str, Any]) -> LiveConnector:
        fields: dict[str, Any] = {"source": body["short_name"], "target": body["readable_collection_id"]}
        if body.get("description") is not None:
            fields["description"] = body["description"]
        scope = self._scope(body["short_name"], body.get("config"))
        if scope:
            fields["scope"] = scope
        schedule = schedule_projection(body.get("schedule"))
        if schedule is not None:
            fields["schedule"] = schedule
        auth = body.get("auth") or {}
        extra: dict[str, Any] = {"auth_method": auth.get("method"), "created_at": body.get("created_at")}
        if auth.get("auth_url"):
            extra["auth_url"] = auth["auth_url"]
        if (body.get("schedule") or {}).get("next_run"):
            extra["next_run"] = body["schedule"]["next_run"]
        return LiveConnector(
            id=str(body["id"]), key=body["name"], name=body["name"], source=body["short_name"],
            target=body["readable_collection_id"], fields=fields, complete=True, version=body.get("modified_at"),
            status=body.get("status"), extra=extra,
        )

    # -- reads ------------------------------------------------------------------------------
    def recall(self, entries: Iterable[Any]) -> None:
        # how many connections each collection held at the last apply: the pages a listing will need
        self._expected = Counter(e.target for e in entries if e.target)

    def _page(self, params: dict[str, Any], skip: int) -> list[Any] | None:
        return self.http.json("GET", "source-connections", kind="list", ok_404=True,
                              params={**params, "skip": skip, "limit": self.page_size})

    def _pages(self, params: dict[str, Any], expected: int = 0) -> Generator[LiveConnector, None, bool]:
        """Yield every page's items; return False when the listing 404ed (no such collection).

        The list has no total count: a client learns it has the last page from a short one, so
        paging one after the other pays a round trip per page. The pages the state predicts
        (``expected`` connections: that many full pages and the short one after them) are fetched
        at once; the listing goes on page by page only if the last of them is full. When nothing
        changed, that is the minimum number of calls in one round trip's time."""
        predicted = expected // self.page_size + 1
        skip = 0
        # one page expected: asked from this thread (a pool's thread would only start it later)
        with ThreadPoolExecutor(max_workers=min(predicted, self.parallelism)) if predicted > 1 else nullcontext() as pool:
            # a window of pages in flight, not all of them: a page waiting to be read holds its decoded JSON
            window = deque(pool.submit(self._page, params, i * self.page_size)
                           for i in range(min(predicted, self.parallelism))) if pool else deque()
            ahead = len(window) if pool else predicted
            while True:
                # past the predicted pages (more live than the state recorded): one after another
                page = window.popleft().result() if window else self._page(params, skip)
                if page is None:
                    return False
                for item in page:
                    yield self._from_item(item)
                if len(page) < self.page_size:
                    return True  # a short page ends the listing (pages predicted past it are empty)
                skip += len(page)
                if ahead < predicted:
                    window.append(pool.submit(self._page, params, ahead * self.page_size))
                    ahead += 1

    def list(self, targets: Iterable[str]) -> Iterator[LiveConnector]:
        targets = list(dict.fromkeys(t for t in targets if t))
        if self._expected is not AirweaveProvider._expected:  # a plan (``recall``)
            # collections the state holds nothing in are where its creates go, and their listing
            # comes back empty, which the real server also answers for a collection that does not
            # exist: the plan will ask (``missing_targets``). Asked now, beside the listing, that
            # costs no round trip of its own; wasted only when the state lost connectors it had.
            unowned = frozenset(t for t in targets if not self._expected.get(t))
            if unowned:
                pool = ThreadPoolExecutor(max_workers=1)
                self._collections_early = (unowned, pool.submit(self._known_collections, unowned))
                pool.shutdown(wait=False)
        for target in targets:
            if not (yield from self._pages({"collection": target}, self._expected.get(target, 0))):
                self.absent_targets.add(target)  # older servers 404 an unknown collection

    def list_everything(self, targets: Iterable[str]) -> Iterator[LiveConnector]:
        # without ``collection`` the server lists every connection of the organisation
        yield from self._pages({})

    def read(self, live: LiveConnector) -> LiveConnector:
        return self._from_detail(self.http.json("GET", f"source-connections/{seg(live.id)}", kind="get"))

    def lookup(self, connector: Connector) -> LiveConnector | None:
        # names are not unique on the platform: the newest match is the create we lost
        matches = [live for live in self.list([connector.target] if connector.target else [])
                   if live.key == connector.name]
        if not matches:
            return None
        return self.read(max(matches, key=lambda live: live.extra.get("created_at", live.version) or ""))

    def credential_template(self, live: LiveConnector) -> dict[str, str | None]:
        # the auth method is in the list item; a direct method's fields are the source's auth_fields
        method = live.extra.get("auth_method") or "direct"
        if method == "oauth_token":
            return {"type": "oauth_token", "access_token": None}
        if method in ("oauth_browser", "oauth_byoc"):
            return {"type": "oauth_browser"}
        if method == "auth_provider":
            # the connection's provider_readable_id is in the detail, but the manifest names it
            return {"type": "auth_provider", "provider_readable_id": None}
        if method != "direct":
            return {}
        info = self.http.json("GET", f"sources/{seg(live.source)}", kind="get", ok_404=True) or {}
        fields = (info.get("auth_fields") or {}).get("fields") or []
        # optional fields (a default in the auth config class) stay out of the template
        return {str(f["name"]): None for f in fields
                if isinstance(f, dict) and f.get("name") and f.get("required", True)}

    # -- writes -----------------------------------------------------------------------------
    def _config(self, connector: Connector, live: LiveConnector | None) -> dict[str, Any]:
        """The whole config to write: a PATCH replaces it, so what the manifest does not own (and
        what ``ignore_changes`` keeps) travels along with its live value."""
        config = dict(connector.scope)
        if live is not None:
            for path, value in live.unowned.items():
                if path.startswith("scope."):
                    config.setdefault(path[len("scope."):], value)
            live_config = live.fields.get("scope") or {}
            for path in connector.lifecycle.ignore_changes:
                key = path[len("scope."):] if path.startswith("scope.") else None
                if path == "scope":
                    return dict(live_config)
                if key and "." not in key:
                    if key in live_config:
                        config[key] = live_config[key]
                    else:
                        config.pop(key, None)
        return config

    def _github_not_found(self, connector: Connector, exc: ProviderError) -> ProviderError:
        repo = connector.scope.get("repo_name")
        branch = connector.scope.get("branch") or "(the default branch)"
        return ProviderError(
            f"connector {connector.name!r}: GitHub does not know repository {repo!r} or branch {branch!r} "
            f"(or the token cannot see it); check scope.repo_name and scope.branch ({exc})", status=exc.status)

    def create(self, connector: Connector, *, idempotency_key: str) -> LiveConnector:
        browser = auth_type(connector) == "oauth_browser"
        schedule = schedule_body(connector.schedule)
        body: dict[str, Any] = {
            "name": connector.name,
            "short_name": connector.source,
            "readable_collection_id": connector.target,
            "config": dict(connector.scope),
            # always explicit: left out, the server picks a schedule of its own
            "schedule": schedule,
            # the browser flow cannot sync before a person authorises it (the platform refuses True),
            # and a connection created with cron null has no sync to start
            "sync_immediately": bool(connector.sync_on_apply) and not browser and schedule["cron"] is not None,
        }
        if connector.description is not None:
            body["description"] = connector.description
        auth = authentication_body(connector)
        if auth is not None:
            body["authentication"] = auth
        try:
            created = self.http.json("POST", "source-connections", kind="create", json=body)
        except ProviderError as exc:
            if exc.status == 400 and connector.source == "github" and "Not found (404)" in str(exc):
                raise self._github_not_found(connector, exc) from None
            raise
        live = self._from_detail(created)
        last_job = ((created.get("sync") or {}).get("last_job") or {}).get("id")
        if last_job:
            live.extra["sync_started"] = str(last_job)
        return live

    def update(self, connector: Connector, live: LiveConnector, changed: frozenset[str]) -> LiveConnector:
        unsupported = changed - self.capabilities.updatable
        if unsupported:
            raise ProviderError(f"airweave cannot change {', '.join(sorted(unsupported))} in place")
        body: dict[str, Any] = {}
        if live.name is not None and live.name != connector.name:
            body["name"] = connector.name  # a rename (``moved:``) keeps the object
        if "description" in changed:
            body["description"] = connector.description
        if "scope" in changed:
            body["config"] = self._config(connector, live)
        if "credentials" in changed:
            auth = authentication_body(connector)
            if auth is not None and auth_type(connector) in ("direct", "oauth_token"):
                body["authentication"] = auth
        schedule = schedule_body(connector.schedule) if "schedule" in changed else None
        if schedule is not None and (schedule["cron"] is not None or not body):
            body["schedule"] = schedule
            schedule = None
        if not body:
            return self.read(live)
        updated = self.http.json("PATCH", f"source-connections/{seg(live.id)}", kind="update", json=body)
        if schedule is not None:
            # config (or anything) together with schedule {cron: null} is a 500 on the real server:
            # the second, idempotent PATCH removes the schedule; a crash between the two leaves a
            # plan that shows only the schedule change
            updated = self.http.json("PATCH", f"source-connections/{seg(live.id)}", kind="update",
                                     json={"schedule": schedule})
        return self._from_detail(updated)

    def delete(self, live: LiveConnector) -> None:
        self.http.request("DELETE", f"source-connections/{seg(live.id)}", kind="delete", ok_404=True)

    # -- syncs ------------------------------------------------------------------------------
    @staticmethod
    def _is_no_sync(exc: ProviderError) -> bool:
        return exc.status == 404 and "no sync" in str(exc).lower()

    def _jobs(self, live: LiveConnector, limit: int = 100) -> list[dict[str, Any]]:
        try:
            return self.http.json("GET", f"source-connections/{seg(live.id)}/jobs", kind="sync_status",
                                  params={"limit": limit}) or []
        except ProviderError as exc:
            if self._is_no_sync(exc):
                raise ProviderError(f"{live.name or live.id} {NO_SYNC}", status=404) from None
            raise

    def trigger_sync(self, live: LiveConnector) -> SyncJob:
        try:
            job = self.http.json("POST", f"source-connections/{seg(live.id)}/run", kind="sync")
        except ProviderError as exc:
            if self._is_no_sync(exc):
                raise NothingToSync(f"{live.name or live.id} {NO_SYNC}") from None
            # 400 "already pending" (409 on older servers): a sync is under way, e.g. the one the
            # create started; that one is ours to watch
            if exc.status not in (400, 409) or not ("already" in str(exc) or exc.status == 409):
                raise
            jobs = self._jobs(live, limit=10)  # newest first
            running = [j for j in jobs if not sync_job(j).done]
            if running:
                return sync_job(running[0])
            if not jobs:
                raise
            # the pending sync ended between the refusal and this read: it is the sync asked for
            return sync_job(jobs[0])
        return sync_job(job)

    def get_sync(self, live: LiveConnector, job_id: str) -> SyncJob:
        for job in self._jobs(live, limit=1000):
            if str(job["id"]) == job_id:
                return sync_job(job)
        raise NotFound(f"airweave: sync job {job_id} of {live.name!r} not found", status=404)

    def cancel_sync(self, live: LiveConnector, job_id: str) -> SyncJob:
        try:
            self.http.json("POST", f"source-connections/{seg(live.id)}/jobs/{seg(job_id)}/cancel", kind="sync")
        except ProviderError as exc:
            # 400: already cancelled or finished (409 on older servers); report how it ended
            if exc.status not in (400, 409):
                raise
        return self.get_sync(live, job_id)

    def status(self, live: LiveConnector) -> ConnectorStatus:
        body = self.http.json("GET", f"source-connections/{seg(live.id)}", kind="get")
        auth_url = (body.get("auth") or {}).get("auth_url")
        if body.get("sync_id") is None and (body.get("auth") or {}).get("authenticated", True):
            return ConnectorStatus(status=body.get("status"), auth_url=auth_url, note=f"no sync: {NO_SYNC_NOTE}")
        jobs = [] if body.get("sync_id") is None else self._jobs(live, limit=1)
        return ConnectorStatus(
            status=body.get("status"),
            last_sync=sync_job(jobs[0]) if jobs else None,
            next_run=(body.get("schedule") or {}).get("next_run"),
            auth_url=auth_url,
        )

    # -- target existence (plan time) ---------------------------------------------------------
    def missing_targets(self, targets: Iterable[str]) -> set[str]:
        # the real server lists an unknown collection as [] (providers.md), so an empty list proves
        # nothing: one paged GET /collections (spec: skip/limit <= 1000) answers for all of them
        wanted = set(targets) - self.absent_targets
        early, self._collections_early = self._collections_early, None
        known = early[1].result() if early is not None and wanted <= early[0] else self._known_collections(wanted)
        return (set(targets) & self.absent_targets) | (wanted - known)

    def _known_collections(self, wanted: Iterable[str]) -> set[str]:
        """The readable ids of the collections listed until every one ``wanted`` is seen (or all are)."""
        wanted = set(wanted)
        known: set[str] = set()
        skip = 0
        while wanted - known:
            page = self.http.json("GET", "collections", kind="list", params={"skip": skip, "limit": 1000})
            known |= {str(c.get("readable_id")) for c in page or [] if isinstance(c, dict)}
            if not isinstance(page, list) or len(page) < 1000:
                break
            skip += len(page)
        return known


ADAPTER = AirweaveProvider
