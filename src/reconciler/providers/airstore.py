"""Airstore adapter: workspace connections, one per (workspace, member, integration type).

Mapping (see ``emulators/airstore.py`` for the API itself):
- identity = ``"{workspace}/{member or ''}/{integration_type}"``, the server's upsert key; Airstore
  has no name field, so the connector's name lives only in the manifest and the state.
- ``source`` = ``integration_type``, ``target`` = workspace id, ``member`` = ``member_id`` (absent
  for a shared connection), ``scope`` = ``{"scope": <OAuth scope string>, "extra": {str: str}}``
  with empty parts left out.
- The list returns scope and extra, so it is complete. The server adds its own annotations to
  ``extra`` (``granted_scopes``, ``capabilities``, ``write_enabled``); they are dropped from the
  live projection so that they never show as drift.
- Create and update are the same upsert POST, which is safe to retry: a repeat lands on the same
  key and keeps the ``external_id``. The upsert replaces credentials, so every call sends the
  manifest's current credentials.
"""
from __future__ import annotations

from typing import Any, Iterable, Iterator


from ..errors import ProviderError
from ..model import Connector, LiveConnector
from .base import Capabilities, Provider

CREDENTIAL_FIELDS = ("access_token", "refresh_token", "api_key")
# keys the server writes into ``extra`` itself; never the user's, never drift
SERVER_EXTRA_KEYS = frozenset({"granted_scopes", "capabilities", "write_enabled"})


def _scope_projection(scope_string: str | None, extra: dict[str, Any] | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if scope_string:
        out["scope"] = scope_string
    if extra:
        out["extra"] = {str(k): str(v) for k, v in extra.items()}
    return out



API_KEY_INTEGRATIONS = frozenset({"posthog"})

class AirstoreProvider(Provider):
    type = "airstore"
    capabilities = Capabilities(
        updatable=frozenset({"scope", "credentials"}),
        replace_on=frozenset({"source", "target", "member"}),
        schedule_forms=frozenset(),
        list_is_complete=True,
        ownership_marker=False,
        can_sync=False,
        create_before_destroy=True,  # every replace-forcing field is part of the upsert key: the replacement has a new key
        default_url="https://api.airstore.ai",
    )

    def credential_template(self, live: LiveConnector) -> dict[str, str | None]:
        # key-based integrations take api_key; the OAuth ones an access token (refresh optional)
        return {"api_key": None} if live.source in API_KEY_INTEGRATIONS else {"access_token": None}

    # -- identity and projection ------------------------------------------------------------
    def identity(self, connector: Connector) -> str:
        return f"{connector.target}/{connector.member or ''}/{connector.source}"

    def desired_fields(self, connector: Connector) -> dict[str, Any]:
        fields: dict[str, Any] = {"source": connector.source, "target": connector.target}
        if connector.member:
            fields["member"] = connector.member
        scope = _scope_projection(connector.scope.get("scope"), connector.scope.get("extra"))
        if scope:
            fields["scope"] = scope
        return fields

    def _live(self, item: dict[str, Any]) -> LiveConnector:
        workspace = item["workspace_id"]
        member = item.get("member_id") or ""
        integration = item["integration_type"]
        user_extra = {k: v for k, v in (item.get("extra") or {}).items() if k not in SERVER_EXTRA_KEYS}
        fields: dict[str, Any] = {"source": integration, "target": workspace}
        if member:
            fields["member"] = str(member)
        scope = _scope_projection(item.get("scope"), user_extra)
        if scope:
            fields["scope"] = scope
        return LiveConnector(
            id=item["external_id"],
            key=f"{workspace}/{member}/{integration}",
            name=None,
            source=integration,
            target=workspace,
            fields=fields,
            complete=True,
            version=item.get("updated_at"),
            status=item.get("status"),
        )

    # -- reads ------------------------------------------------------------------------------
    def _path(self, workspace: str) -> str:
        return f"api/v1/workspaces/{workspace}/connections"

    def list(self, targets: Iterable[str]) -> Iterator[LiveConnector]:
        for workspace in dict.fromkeys(t for t in targets if t):
            body = self.http.json("GET", self._path(workspace), kind="list", ok_404=True)
            # a missing workspace holds nothing; creating into it fails later with the server's 404
            if body is None:
                continue
            for item in body.get("data") or []:
                yield self._live(item)

    # -- writes -----------------------------------------------------------------------------
    def _body(self, connector: Connector) -> dict[str, Any]:
        unknown = sorted(set(connector.credentials) - set(CREDENTIAL_FIELDS))
        if unknown:
            raise ProviderError(
                f"{self.config.name} (airstore): connector {connector.name!r}: unknown credential field(s) "
                f"{', '.join(unknown)}; Airstore takes {', '.join(CREDENTIAL_FIELDS)}"
            )
        body: dict[str, Any] = {"integration_type": connector.source}
        if connector.member:
            body["member_id"] = connector.member
        scope = connector.scope.get("scope")
        if scope:
            body["scope"] = scope
        extra = connector.scope.get("extra")
        if extra:
            body["extra"] = {str(k): str(v) for k, v in extra.items()}
        for name in CREDENTIAL_FIELDS:
            secret = connector.credentials.get(name)
            if secret is not None:
                body[name] = secret.reveal()
        return body

    def _upsert(self, connector: Connector, kind: str) -> LiveConnector:
        if not connector.target:
            raise ProviderError(f"{self.config.name} (airstore): connector {connector.name!r} has no target workspace")
        # the upsert is keyed by (workspace, member, type): repeating it cannot duplicate
        body = self.http.json("POST", self._path(connector.target), kind=kind, json=self._body(connector),
                              safe_to_retry=True)
        return self._live(body["data"])

    def create(self, connector: Connector, *, idempotency_key: str) -> LiveConnector:
        return self._upsert(connector, "create")

    def update(self, connector: Connector, live: LiveConnector, changed: frozenset[str]) -> LiveConnector:
        return self._upsert(connector, "update")

    def delete(self, live: LiveConnector) -> None:
        self.http.request("DELETE", f"{self._path(live.target or '')}/{live.id}", kind="delete", ok_404=True)


ADAPTER = AirstoreProvider
