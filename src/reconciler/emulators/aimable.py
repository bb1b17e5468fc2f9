"""Emulator of Aimable's Collection Connectors API (``seeds/aimable-collection-connectors.txt``).

Paths live under ``/v1/spaces/{space_id}/collections/{collection_id}/connectors``. Behaviour the
seed documents is reproduced as written; where it is silent, the choices are:

- **Targets.** ``config.targets`` lists ``space_id/collection_id`` pairs the API key can use. A space
  the key does not know answers 403 (the seed's "insufficient permissions for the space or
  collection"); a known space with an unknown collection answers 404 ``Collection not found``.
- **Pagination** (connector list and sync list): ``limit`` (1..100, default 20; the cap is
  ``config.page_limit_max`` when set; the seed's error example, line 79). The seed documents no
  more, so the connector list pages the way the ``paging`` knob says: ``cursor`` (default: an
  opaque ``cursor``, answers ``{"data": [...], "next_cursor": "..." | null}``; the cursor encodes
  the last item's creation sequence, so deleting items between pages neither skips nor repeats
  others), ``link`` (a ``Link: rel="next"`` header), ``offset``, or ``none`` (one page: truncated).
- **Idempotency.** ``Idempotency-Key`` is required on create (422, ``loc: ["header",
  "idempotency-key"]``). Keys are scoped to the API key. The same key with the same request
  (path and body) answers 201 with the connector it created, as it is now, and the header
  ``Idempotent-Replayed: true``, creating nothing — the original answer, even when that connector
  has since been deleted (Stripe-style keys outlive what they made); with another request it
  answers 422. A key is forgotten only after 24 hours.
- **Validation**: the shared per-slug rules (``reconciler.scope_rules``, which the manifest schema
  is generated from): ``provider_slug`` one of the known slugs, ``credential`` with
  ``access_token`` (and optionally ``refresh_token``, lines 20-23) and nothing else,
  ``scope_config`` keys known for the slug with non-empty values, no unknown top-level fields.
- **Credentials** are write-only: never returned, and stored only as a keyed fingerprint (so a
  replayed create can be compared) plus the field names.
- **PATCH** takes ``credential`` and ``scope_config`` (each replaces the whole value); any other
  field is 422 ``extra_forbidden`` (``provider_slug`` cannot change: delete and create instead).
- **Syncs** start running at once (the seed's trigger answers ``status: "running"``), advance with
  wall time through :class:`JobClock`, and end ``completed`` or ``failed`` (``config.sync_fail``).
  One sync runs per connector at a time: triggering while one runs answers 409; cancelling when
  none runs answers 409. The ``sync_status_word`` knob makes finished syncs report another word.
- Errors: 401/403/404/409 as ``{"detail": "message"}``; 422 as ``{"detail": [{loc, msg, type}]}``
  in the FastAPI/pydantic style the seed shows. Messages never echo the input.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from typing import Any, Callable

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .. import scope_rules
from ..scope_rules import AIMABLE
from .base import BadCursor, EmulatorConfig, JobClock, JSONResponse, Store, new_id, now_iso, paginate

DEFAULT_LIMIT = 20
MAX_LIMIT = 100
IDEMPOTENCY_TTL = 24 * 3600.0
PRINCIPAL_ID = "principal-emulator"

# provider_slug -> its scope_config keys and credential fields: the rules the manifest schema is
# generated from (one truth from validate to this server)
PROVIDERS = AIMABLE
CREATE_FIELDS = ("provider_slug", "credential", "scope_config")
_PYDANTIC = {"missing": ("Field required", "missing"), "unknown": ("Extra inputs are not permitted", "extra_forbidden")}


class ApiError(Exception):
    """An error answer: ``detail`` is a message string or a list of ``{loc, msg, type}``."""

    def __init__(self, status: int, detail: Any) -> None:
        super().__init__(str(detail))
        self.status = status
        self.detail = detail


def field_error(loc: list[Any], msg: str, type_: str) -> dict[str, Any]:
    return {"loc": loc, "msg": msg, "type": type_}


def invalid(*errors: dict[str, Any]) -> ApiError:
    return ApiError(422, list(errors))


# -- validation (pure) -------------------------------------------------------------------------

def _enum_message(values: list[str]) -> str:
    quoted = [f"'{v}'" for v in values]
    return "Input should be " + ", ".join(quoted[:-1]) + " or " + quoted[-1]


def _loc_errors(problems: list[scope_rules.Problem], loc: list[Any]) -> list[dict[str, Any]]:
    out = []
    for problem in problems:
        msg, type_ = _PYDANTIC.get(problem.code, (f"Value error, {problem.message}", "value_error"))
        out.append(field_error([*loc, *problem.path[1:]], msg, type_))
    return out


def validate_scope_config(slug: str | None, value: Any, loc: list[Any]) -> list[dict[str, Any]]:
    if not isinstance(value, dict):
        return [field_error(loc, "Input should be a valid dictionary", "dict_type")]
    if slug not in PROVIDERS:
        return []  # the slug itself is refused
    return _loc_errors(scope_rules.check_scope(PROVIDERS[slug], value, "scope_config", slug), loc)


def validate_credential(value: Any, loc: list[Any], slug: str | None = None, *, partial: bool = False
                        ) -> list[dict[str, Any]]:
    if not isinstance(value, dict):
        return [field_error(loc, "Input should be a valid dictionary", "dict_type")]
    if not value:
        return [field_error(loc, "Value error, credential must contain at least one field", "value_error")]
    rules = PROVIDERS.get(slug or "") or next(iter(PROVIDERS.values()))
    return _loc_errors(scope_rules.check_credentials(rules, value, "credential", slug or "aimable",
                                                     partial=partial), loc)


def validate_create(body: Any) -> list[dict[str, Any]]:
    if not isinstance(body, dict):
        return [field_error(["body"], "Input should be a valid dictionary or object to extract fields from",
                            "model_attributes_type")]
    errors = [field_error(["body", key], "Extra inputs are not permitted", "extra_forbidden")
              for key in body if key not in CREATE_FIELDS]
    slug = body.get("provider_slug")
    if "provider_slug" not in body:
        errors.append(field_error(["body", "provider_slug"], "Field required", "missing"))
    elif slug not in PROVIDERS:
        errors.append(field_error(["body", "provider_slug"], _enum_message(sorted(PROVIDERS)), "enum"))
    if "credential" not in body:
        errors.append(field_error(["body", "credential"], "Field required", "missing"))
    else:
        errors += validate_credential(body["credential"], ["body", "credential"], slug if slug in PROVIDERS else None)
    if body.get("scope_config") is not None:
        errors += validate_scope_config(slug if slug in PROVIDERS else None, body["scope_config"],
                                        ["body", "scope_config"])
    return errors


def validate_patch(body: Any, slug: str) -> list[dict[str, Any]]:
    if not isinstance(body, dict):
        return [field_error(["body"], "Input should be a valid dictionary or object to extract fields from",
                            "model_attributes_type")]
    errors = [field_error(["body", key], "Extra inputs are not permitted", "extra_forbidden")
              for key in body if key not in ("credential", "scope_config")]
    if "credential" in body:
        errors += validate_credential(body["credential"], ["body", "credential"], slug)
    if "scope_config" in body:
        errors += validate_scope_config(slug, body["scope_config"], ["body", "scope_config"])
    return errors


def parse_limit(raw: str | None, cap: int) -> int:
    if raw is None:
        return min(DEFAULT_LIMIT, cap)
    try:
        limit = int(raw)
    except ValueError:
        raise invalid(field_error(["query", "limit"], "Input should be a valid integer, unable to parse string as an "
                                  "integer", "int_parsing")) from None
    if limit > cap:
        raise invalid(field_error(["query", "limit"], f"Input should be less than or equal to {cap}",
                                  "less_than_equal"))
    if limit < 1:
        raise invalid(field_error(["query", "limit"], "Input should be greater than or equal to 1",
                                  "greater_than_equal"))
    return limit


# -- browse: a plausible, deterministic resource tree per provider ----------------------------

_BROWSE_KINDS = {
    "google-drive": ("folder", "Folder"), "onedrive": ("folder", "Folder"), "sharepoint": ("folder", "Folder"),
    "dropbox": ("folder", "Folder"), "slack": ("channel", "channel"), "github": ("repository", "repo"),
    "notion": ("page", "Page"), "confluence": ("space", "Space"), "jira": ("project", "PROJ"),
    "gmail": ("label", "Label"),
}
# providers whose resources are flat lists (channels, labels, ...): nothing below the top level
_FLAT = frozenset({"slack", "gmail", "jira"})


def browse_items(slug: str, parent_id: str | None) -> list[dict[str, Any]]:
    kind, stem = _BROWSE_KINDS.get(slug, ("resource", "Resource"))
    depth = 0 if not parent_id else parent_id.count(".") + 1
    if parent_id and (slug in _FLAT or depth > 3):
        return []
    seed = int(hashlib.sha256(f"{slug}:{parent_id or ''}".encode()).hexdigest()[:8], 16)
    count = 2 + seed % 4
    items = []
    for n in range(count):
        ident = f"{parent_id}.{n}" if parent_id else f"{kind[:3]}{seed % 9000 + 1000}{n}"
        if slug == "slack":
            name = f"#{['general', 'engineering', 'support', 'random', 'sales'][n % 5]}"
        else:
            name = f"{stem} {ident}"
        items.append({"id": ident, "name": name, "type": kind if depth < 3 else "file", "parent_id": parent_id,
                      "has_children": slug not in _FLAT and depth < 3})
    return items


# -- the application ------------------------------------------------------------------------

def paged(mode: str | None, rows: list[dict[str, Any]], limit: int, request: Request):  # type: ignore[no-untyped-def]
    try:
        return paginate(mode, rows, limit, request.query_params, request.url, seq=lambda row: row["_seq"])
    except BadCursor as exc:
        where = "offset" if "offset" in str(exc) else "cursor"
        raise invalid(field_error(["query", where], f"Value error, {exc}", "value_error")) from None


async def not_found(request: Request, exc: Exception) -> Response:
    """Unknown paths and methods answer in the platform's JSON error shape, not plain text."""
    status = getattr(exc, "status_code", 500)
    return JSONResponse({"detail": getattr(exc, "detail", "Error")}, status_code=status,
                        headers=getattr(exc, "headers", None))


def create_app(config: EmulatorConfig) -> Starlette:
    store = Store("aimable", config.data_dir, {
        "fingerprint_key": secrets.token_hex(16), "seq": 0,
        "targets": [], "connectors": {}, "idempotency": {}, "syncs": {},
    })
    with store.lock:
        for target in config.targets:
            if target not in store.data["targets"]:
                store.data["targets"].append(target)
        store.save()
    clock = JobClock(config.sync_duration, config.sync_fail)
    cap = config.page_limit_max or MAX_LIMIT
    fp_key = store.data["fingerprint_key"].encode()

    def fingerprint(value: Any) -> str:
        canonical = json.dumps(value, sort_keys=True, separators=(",", ":"))
        return hmac.new(fp_key, canonical.encode(), hashlib.sha256).hexdigest()

    def next_seq() -> int:
        store.data["seq"] += 1
        return store.data["seq"]

    def authenticate(request: Request) -> str:
        bearer = request.headers.get("authorization", "")
        token = bearer[7:].strip() if bearer[:7].lower() == "bearer " else request.headers.get("x-api-key", "")
        if not token or not hmac.compare_digest(token.encode(), config.api_key.encode()):
            raise ApiError(401, "Missing or invalid access token.")
        return token

    def check_target(request: Request) -> str:
        space, collection = request.path_params["space_id"], request.path_params["collection_id"]
        target = f"{space}/{collection}"
        known = store.data["targets"]
        if target in known:
            return target
        if any(t.split("/", 1)[0] == space for t in known):
            raise ApiError(404, "Collection not found")
        raise ApiError(403, "Insufficient permissions for the space or collection.")

    def find_connector(request: Request, target: str) -> dict[str, Any]:
        connector = store.data["connectors"].get(request.path_params["connector_id"])
        if connector is None or connector["_target"] != target:
            raise ApiError(404, "Connector not found")
        return connector

    def public(connector: dict[str, Any]) -> dict[str, Any]:
        # a whitelist, so that nothing stored beside the public fields (credential fingerprint,
        # bookkeeping) can ever reach a response
        return {key: connector[key] for key in
                ("id", "collection_id", "provider_slug", "principal_id", "scope_config", "status",
                 "created_at", "updated_at")}

    def sync_view(job: dict[str, Any]) -> dict[str, Any]:
        view = clock.view(job)
        word = config.sync_status_word if view["finished_at"] and config.sync_status_word else view["status"]
        out = {
            "id": job["id"], "collection_connector_id": job["connector_id"], "status": word,
            "records_fetched": view["records"], "metadata": dict(job.get("metadata", {})),
            "created_at": job["created_at"], "completed_at": view["finished_at"],
        }
        if view["error"]:
            out["error"] = view["error"]
        return out

    def running_sync(connector_id: str) -> dict[str, Any] | None:
        for job in store.data["syncs"].values():
            if job["connector_id"] == connector_id and clock.view(job)["status"] in ("queued", "running"):
                return job
        return None

    async def read_json(request: Request) -> Any:
        raw = await request.body()
        if not raw:
            raise invalid(field_error(["body"], "Field required", "missing"))
        try:
            return json.loads(raw)
        except ValueError as exc:
            position = getattr(exc, "pos", 0)
            raise invalid(field_error(["body", position], "JSON decode error", "json_invalid")) from None

    def endpoint(handler: Callable[..., Response], *, with_body: bool = False) -> Callable[[Request], Any]:
        """Auth, target check, body parsing, persistence and error rendering around one handler."""

        async def wrapped(request: Request) -> Response:
            try:
                authenticate(request)
                args = (await read_json(request),) if with_body else ()
                with store.lock:
                    result = handler(request, check_target(request), *args)
                    if request.method != "GET":
                        store.save()
                return result
            except ApiError as err:
                return JSONResponse({"detail": err.detail}, status_code=err.status)

        return wrapped

    # -- connectors --
    def list_connectors(request: Request, target: str) -> Response:
        limit = parse_limit(request.query_params.get("limit"), cap)
        items = sorted((c for c in store.data["connectors"].values() if c["_target"] == target),
                       key=lambda c: c["_seq"])
        found = paged(config.paging, items, limit, request)
        body: dict[str, Any] = {"data": [public(c) for c in found.items]}
        if (config.paging or "cursor") == "cursor":
            body["next_cursor"] = found.next_cursor
        return JSONResponse(body, headers=found.headers)

    def create(request: Request, target: str, body: Any) -> Response:
        key = request.headers.get("idempotency-key")
        errors = [] if key else [field_error(["header", "idempotency-key"], "Field required", "missing")]
        errors += validate_create(body)
        if errors:
            raise invalid(*errors)
        request_fp = fingerprint({"target": target, "body": body})
        scoped_key = fingerprint({"api_key": config.api_key, "key": key})  # keys are per API key
        record = store.data["idempotency"].get(scoped_key)
        if record and time.time() - record["at"] > IDEMPOTENCY_TTL:
            record = None  # expired: the key is free again
        if record:
            # Stripe-style: the key outlives its connector; the same request gets the first answer
            # again (even when that connector has since been deleted), another request a 422
            if record["request_fp"] != request_fp:
                raise invalid(field_error(["header", "idempotency-key"], "Idempotency-Key was already used with a "
                                          "different request", "idempotency_key_reused"))
            return JSONResponse(record["response"], status_code=201, headers={"Idempotent-Replayed": "true"})
        stamp = now_iso()
        connector = {
            "id": new_id(), "collection_id": target.split("/", 1)[1], "provider_slug": body["provider_slug"],
            "principal_id": PRINCIPAL_ID, "scope_config": body.get("scope_config") or {}, "status": "active",
            "created_at": stamp, "updated_at": stamp,
            "_target": target, "_seq": next_seq(),
            "_credential_fields": sorted(body["credential"]), "_credential_fp": fingerprint(body["credential"]),
        }
        store.data["connectors"][connector["id"]] = connector
        answer = {"data": public(connector)}
        store.data["idempotency"][scoped_key] = {"request_fp": request_fp, "connector_id": connector["id"],
                                                 "at": time.time(), "response": answer}
        return JSONResponse(answer, status_code=201)

    def get_connector(request: Request, target: str) -> Response:
        return JSONResponse({"data": public(find_connector(request, target))})

    def patch(request: Request, target: str, body: Any) -> Response:
        connector = find_connector(request, target)
        errors = validate_patch(body, connector["provider_slug"])
        if errors:
            raise invalid(*errors)
        if "scope_config" in body:
            connector["scope_config"] = body["scope_config"]
        if "credential" in body:
            connector["_credential_fields"] = sorted(body["credential"])
            connector["_credential_fp"] = fingerprint(body["credential"])
        connector["updated_at"] = now_iso()
        return JSONResponse({"data": public(connector)})

    def delete_connector(request: Request, target: str) -> Response:
        connector = find_connector(request, target)
        del store.data["connectors"][connector["id"]]
        store.data["syncs"] = {k: j for k, j in store.data["syncs"].items() if j["connector_id"] != connector["id"]}
        return Response(status_code=204)

    def browse(request: Request, target: str) -> Response:
        connector = find_connector(request, target)
        parent = request.query_params.get("parent_id") or None
        return JSONResponse({"data": browse_items(connector["provider_slug"], parent)})

    # -- syncs --
    def trigger_sync(request: Request, target: str) -> Response:
        connector = find_connector(request, target)
        if running_sync(connector["id"]):
            raise ApiError(409, "A sync is already running for this connector.")
        job = clock.new()
        # Aimable starts a sync at once (the seed's trigger answers "running"): skip the queue
        job["created"] -= clock.duration * 0.1
        job.update(connector_id=connector["id"], metadata={}, _seq=next_seq())
        store.data["syncs"][job["id"]] = job
        return JSONResponse({"data": sync_view(job)}, status_code=202)

    def list_syncs(request: Request, target: str) -> Response:
        connector = find_connector(request, target)
        limit = parse_limit(request.query_params.get("limit"), cap)
        jobs = sorted((j for j in store.data["syncs"].values() if j["connector_id"] == connector["id"]),
                      key=lambda j: j["_seq"], reverse=True)
        found = paged("cursor", jobs, limit, request)
        return JSONResponse({"data": [sync_view(j) for j in found.items], "next_cursor": found.next_cursor})

    def get_sync(request: Request, target: str) -> Response:
        connector = find_connector(request, target)
        job = store.data["syncs"].get(request.path_params["sync_id"])
        if job is None or job["connector_id"] != connector["id"]:
            raise ApiError(404, "Sync not found")
        return JSONResponse({"data": sync_view(job)})

    def cancel_sync(request: Request, target: str) -> Response:
        connector = find_connector(request, target)
        job = running_sync(connector["id"])
        if job is None or not clock.cancel(job):
            raise ApiError(409, "No sync is running for this connector.")
        return JSONResponse({"data": sync_view(job)})

    base = "/v1/spaces/{space_id}/collections/{collection_id}/connectors"
    one = base + "/{connector_id}"
    app = Starlette(routes=[
        Route(base, endpoint(list_connectors), methods=["GET"]),
        Route(base, endpoint(create, with_body=True), methods=["POST"]),
        Route(one, endpoint(get_connector), methods=["GET"]),
        Route(one, endpoint(patch, with_body=True), methods=["PATCH"]),
        Route(one, endpoint(delete_connector), methods=["DELETE"]),
        Route(one + "/browse", endpoint(browse), methods=["GET"]),
        Route(one + "/sync/cancel", endpoint(cancel_sync), methods=["POST"]),
        Route(one + "/sync", endpoint(list_syncs), methods=["GET"]),
        Route(one + "/sync", endpoint(trigger_sync), methods=["POST"]),
        Route(one + "/sync/{sync_id}", endpoint(get_sync), methods=["GET"]),
    ], exception_handlers={HTTPException: not_found})
    app.state.store = store
    return app
