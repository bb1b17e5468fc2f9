"""Airstore adapter: workspace connections, one per (workspace, member, integration type).

Written against the server's source (``beam-cloud/airstore`` at 6abcbac2, ``pkg/api/v1/connections.go``;
see ``emulators/airstore.py`` for the API itself). What shapes the mapping:

- The server answers with its own numbers: ``workspace_id`` and ``member_id`` in a connection are
  internal integers, never the external ids the caller used. So the workspace of a live
  connection is the one in the request path, and a member is known by the member id the manifest
  names: the adapter learns "internal member N of workspace W is member X" from the answer to an
  upsert it sent with X, and from the state (whose entries name the member of each connection
  they own, by ``external_id``). A member it cannot map stays ``#N``: such a connection matches no
  manifest connector and shows as unmanaged. No path is ever built from a number the server
  returned; a delete goes by ``external_id`` under the request path's workspace.
- identity = ``"{workspace}/{member or ''}/{integration_type}"``, the server's upsert key.
- ``scope`` = ``{"scope": <OAuth scope string>, "extra": <keyed fingerprint>}`` (empty parts left
  out). ``extra`` is never returned (it lives with the credentials), so like credentials it is
  compared by a keyed fingerprint (``fingerprint.values_fingerprint``) of what was last sent. The
  list therefore is not complete: the engine takes the projection from the state while
  ``updated_at`` has not moved; when it has (someone else upserted), :meth:`read` leaves
  ``extra`` out as unknown, so a manifest that declares one plans to send it again.
- An upsert replaces the whole credential set (and ``extra``): every call sends every declared
  credential. It is safe to retry (same key, same ``external_id``).
- Store errors are 500s with the database's text; the permanent ones (a too-long column, a
  non-UUID id) are not retried (:meth:`permanent_error`) and the manifest schema refuses them first.
- There is no status field and no sync API: :meth:`status` says the credentials are stored,
  nothing more.
"""
from __future__ import annotations

import threading
from typing import Any, Iterable, Iterator
from urllib.parse import quote

from ..errors import ProviderError
from ..fingerprint import fingerprint_key, values_fingerprint
from ..model import Connector, LiveConnector
from .base import Capabilities, ConnectorStatus, Provider

CREDENTIAL_FIELDS = ("access_token", "refresh_token", "api_key")
# pkg/types/integration.go at 6abcbac2: the server's registry (name -> auth type). The create handler
# takes any non-empty integration_type up to VARCHAR(50); these are the ones its tools know.
KNOWN_INTEGRATIONS = {
    "wikipedia": "none", "weather": "apikey", "exa": "apikey", "github": "oauth", "gmail": "oauth",
    "notion": "oauth", "gdrive": "oauth", "slack": "oauth", "linear": "oauth",
}
API_KEY_INTEGRATIONS = frozenset(k for k, v in KNOWN_INTEGRATIONS.items() if v == "apikey")
# the database's own words for errors that no retry can cure (pq via err.Error())
_PERMANENT_500 = ("value too long for type", "invalid input syntax for type")
_ADMIN_TOKEN = ("an admin token: the cluster admin token, or a token of a workspace member whose role is "
                "admin")


def _key(workspace: str, member: str, integration: str) -> str:
    return f"{workspace}/{member}/{integration}"


class AirstoreProvider(Provider):
    type = "airstore"
    capabilities = Capabilities(
        lists_per_target=True,  # each list call is for one target (import needs --target to start)
        updatable=frozenset({"scope", "credentials"}),
        replace_on=frozenset({"source", "target", "member"}),
        schedule_forms=frozenset(),
        list_is_complete=False,  # extra is never returned
        ownership_marker=False,
        can_sync=False,
        create_before_destroy=True,  # every replace-forcing field is part of the upsert key: the replacement has a new key
        default_url="https://api.airstore.ai",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._lock = threading.Lock()
        self._members: dict[tuple[str, int], str] = {}  # (workspace, internal member id) -> member id
        self._owned: dict[str, tuple[str, str]] = {}  # external_id -> (workspace, member) from the state
        self._extra_key = fingerprint_key(self.config.api_key)

    def credential_template(self, live: LiveConnector) -> dict[str, str | None]:
        # key-based integrations take api_key; the OAuth ones an access token (refresh optional)
        return {"api_key": None} if live.source in API_KEY_INTEGRATIONS else {"access_token": None}

    # -- what the caller knows ----------------------------------------------------------------
    def recall(self, entries: Iterable[Any]) -> None:
        # each owned entry's key names its workspace and member (the identity written at apply)
        for entry in entries:
            parts = (entry.key or "").rsplit("/", 2)
            if entry.id and len(parts) == 3 and parts[1] and not parts[1].startswith("#"):
                with self._lock:
                    self._owned[entry.id] = (parts[0], parts[1])

    def _learn(self, workspace: str, internal: Any, member: str) -> None:
        if isinstance(internal, int) and member:
            with self._lock:
                self._members[(workspace, internal)] = member

    # -- identity and projection ------------------------------------------------------------
    def identity(self, connector: Connector) -> str:
        return _key(connector.target or "", connector.member or "", connector.source)

    @classmethod
    def containers(cls, connector: Connector) -> set[str]:
        # the sandbox's emulator needs the member to exist too (WORKSPACE/MEMBER targets)
        if not connector.target:
            return set()
        return {connector.target} | ({f"{connector.target}/{connector.member}"} if connector.member else set())

    def _extra(self, extra: Any) -> str | None:
        if not extra:
            return None
        return values_fingerprint("airstore extra", {str(k): str(v) for k, v in extra.items()}, self._extra_key)

    def _scope(self, scope_string: str | None, extra: str | None) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if scope_string:
            out["scope"] = scope_string
        if extra:
            out["extra"] = extra
        return out

    def desired_fields(self, connector: Connector) -> dict[str, Any]:
        fields: dict[str, Any] = {"source": connector.source, "target": connector.target}
        if connector.member:
            fields["member"] = connector.member
        scope = self._scope(connector.scope.get("scope"), self._extra(connector.scope.get("extra")))
        if scope:
            fields["scope"] = scope
        return fields

    def _live(self, workspace: str, item: dict[str, Any], *, sent: Connector | None = None) -> LiveConnector:
        """One connection of ``workspace`` (the request path's). ``sent``: the connector just upserted,
        whose member and extra the answer stands for."""
        integration = item["integration_type"]
        internal = item.get("member_id")
        member = ""
        if internal is not None:
            if sent is not None and sent.member:
                member = sent.member
                self._learn(workspace, internal, member)
            else:
                with self._lock:
                    member = self._members.get((workspace, internal)) or f"#{internal}"
        fields: dict[str, Any] = {"source": integration, "target": workspace}
        if member:
            fields["member"] = member
        extra = self._extra(sent.scope.get("extra")) if sent is not None else None
        scope = self._scope(item.get("scope"), extra)
        if scope:
            fields["scope"] = scope
        return LiveConnector(
            id=item["external_id"],
            key=_key(workspace, member, integration),
            name=None,
            source=integration,
            target=workspace,
            fields=fields,
            complete=sent is not None,  # only an upsert's answer is known to carry all (extra as sent)
            version=item.get("updated_at"),
        )

    # -- reads ------------------------------------------------------------------------------
    def _path(self, workspace: str) -> str:
        return f"api/v1/workspaces/{quote(workspace, safe='')}/connections"

    def list(self, targets: Iterable[str]) -> Iterator[LiveConnector]:
        for workspace in dict.fromkeys(t for t in targets if t):
            body = self.http.json("GET", self._path(workspace), kind="list", ok_404=True)
            # a missing workspace holds nothing; creating into it fails later with the server's 404
            if body is None:
                self.absent_targets.add(workspace)
            items = (body or {}).get("data") or []  # an empty list is "data": null
            with self._lock:
                owned = dict(self._owned)
            for item in items:  # a connection the state owns names its member: learn the number
                known = owned.get(item.get("external_id"))
                if known is not None and known[0] == workspace:
                    self._learn(workspace, item.get("member_id"), known[1])
            for item in items:
                yield self._live(workspace, item)

    def read(self, live: LiveConnector) -> LiveConnector:
        """The list is all there is to read. Called when ``updated_at`` moved since the state saw the
        connection (someone else upserted: credentials and ``extra`` replaced) or for an adoption:
        ``extra`` is unknown then, so it is left out, and a manifest that declares one sends it again."""
        live.complete = True
        return live

    def import_blocker(self, live: LiveConnector) -> str | None:
        member = live.fields.get("member")
        if isinstance(member, str) and member.startswith("#"):
            return (f"its member is Airstore's internal number {member[1:]}, which the connections API never maps "
                    "back to a member id; declare it by hand (member: <the member's external id>) and apply")
        return None

    def status(self, live: LiveConnector) -> ConnectorStatus:
        # Airstore keeps no connection status: all it can tell is that the credentials are stored
        return ConnectorStatus(status="stored")

    # -- errors -----------------------------------------------------------------------------
    def permanent_error(self, response) -> bool:  # type: ignore[no-untyped-def]
        if response.status_code != 500:
            return False
        try:
            text = str(response.json().get("error") or "")
        except (ValueError, AttributeError):
            return False
        return any(marker in text for marker in _PERMANENT_500)

    def _refused(self, exc: ProviderError, what: str, member: str | None, verb: str) -> ProviderError:
        """A 403 said in terms of the manifest: what was refused, and which token would do."""
        if exc.status != 403 or "token does not have access" in str(exc):
            return exc
        need = _ADMIN_TOKEN if not member else f"{_ADMIN_TOKEN}, or member {member}'s own token"
        reason = str(exc).rsplit(" -> 403: ", 1)[-1]
        return ProviderError(f"{self.config.name} (airstore): {what}: Airstore refused to {verb} it (403 {reason}); "
                             f"provider {self.config.name!r} must authenticate with {need}", status=403)

    # -- writes -----------------------------------------------------------------------------
    def _body(self, connector: Connector, keep_scope: str | None = None) -> dict[str, Any]:
        unknown = sorted(set(connector.credentials) - set(CREDENTIAL_FIELDS))
        if unknown:
            raise ProviderError(
                f"{self.config.name} (airstore): connector {connector.name!r}: unknown credential field(s) "
                f"{', '.join(unknown)}; Airstore takes {', '.join(CREDENTIAL_FIELDS)}"
            )
        body: dict[str, Any] = {"integration_type": connector.source}
        if connector.member:
            body["member_id"] = connector.member
        # the upsert replaces the scope too: one the platform holds and the manifests never owned goes along
        scope = connector.scope.get("scope") or keep_scope
        if scope:
            body["scope"] = scope
        extra = connector.scope.get("extra")
        if extra:
            body["extra"] = {str(k): str(v) for k, v in extra.items()}
        # the upsert replaces the whole credential set: a field left out is cleared
        for name in CREDENTIAL_FIELDS:
            secret = connector.credentials.get(name)
            if secret is not None:
                body[name] = secret.reveal()
        return body

    def _upsert(self, connector: Connector, kind: str, keep_scope: str | None = None) -> LiveConnector:
        if not connector.target:
            raise ProviderError(f"{self.config.name} (airstore): connector {connector.name!r} has no target workspace")
        try:
            # the upsert is keyed by (workspace, member, type): repeating it cannot duplicate
            body = self.http.json("POST", self._path(connector.target), kind=kind,
                                  json=self._body(connector, keep_scope), safe_to_retry=True)
        except ProviderError as exc:
            raise self._refused(exc, f"connector {connector.name!r}", connector.member, "write") from None
        return self._live(connector.target, body["data"], sent=connector)

    def create(self, connector: Connector, *, idempotency_key: str) -> LiveConnector:
        return self._upsert(connector, "create")

    def update(self, connector: Connector, live: LiveConnector, changed: frozenset[str]) -> LiveConnector:
        kept = live.unowned.get("scope.scope")
        return self._upsert(connector, "update", kept if isinstance(kept, str) else None)

    def delete(self, live: LiveConnector) -> None:
        # by external_id alone (the server ignores the path's workspace for the lookup); the
        # workspace is the one the connection was listed under, never a number from the answer
        try:
            self.http.request("DELETE", f"{self._path(live.target or '')}/{quote(live.id, safe='')}", kind="delete",
                              ok_404=True)
        except ProviderError as exc:
            member = live.fields.get("member")
            what = (f"the personal {live.source} connection of member {member}" if member
                    else f"the shared {live.source} connection") + f" {live.id} in workspace {live.target}"
            raise self._refused(exc, what, member, "delete") from None

    # -- target existence (plan time) ---------------------------------------------------------
    def missing_targets(self, targets: Iterable[str]) -> set[str]:
        # the list of an unknown workspace is 404 "workspace not found" (server pkg/api/v1): the plan's
        # own list call already said which are missing, no further call
        return set(targets) & self.absent_targets


ADAPTER = AirstoreProvider
