"""Validated views -> the typed model: Connector, ProviderConfig, ... with secrets as Secret."""
from __future__ import annotations

from types import MappingProxyType
from typing import Any, Mapping

from ..model import Connector, Lifecycle, Manifest, MovedEntry, ProviderConfig, Schedule, Secret, StateConfig
from .durations import parse_duration
from .merge import Entry, Merged

# used when a provider omits url; adapters may declare the same in Capabilities.default_url
DEFAULT_URLS = {
    "airweave": "https://api.airweave.ai",
    "nango": "https://api.nango.dev",
    "airstore": "https://api.airstore.ai",
    "aimable": "https://api.aimable.ai",
    "connectors-api": "https://api.connectors-api.com",
}


class AuthMethod(Secret):
    """The literal ``type`` key of ``credentials`` (OAUTH2, oauth_token, ...).

    It sits in the credentials map beside the secrets so adapters read it the same way
    (``.reveal()``), but it is not secret: it is not registered for scrubbing, which would
    otherwise mask ordinary words like "direct" in every output.
    """

    __slots__ = ()

    def __init__(self, value: str) -> None:  # deliberately no redact.register
        self._value = value
        self.source = None


def _secret(entry: Entry, sub: tuple[Any, ...]) -> Secret | None:
    found = entry.source.secrets.get(entry.path + sub)
    if found is None:
        return None
    value, source = found
    return Secret(value, source=source)


def _schedule(raw: dict[str, Any]) -> Schedule:
    if "cron" in raw:
        return Schedule(cron=" ".join(raw["cron"].split()))
    if "every" in raw:
        try:
            return Schedule(every=parse_duration(raw["every"]))
        except ValueError:  # an unset ${VAR} under --no-env: nothing to parse, and nothing will run
            return Schedule(manual=True)
    if raw.get("continuous"):
        return Schedule(continuous=True, cursor_field=raw.get("cursor_field"))
    return Schedule(manual=True)


def _provider(entry: Entry) -> ProviderConfig:
    body = entry.body
    return ProviderConfig(
        name=entry.name,
        type=body["type"],
        url=(body.get("url") or DEFAULT_URLS.get(body["type"], "")).rstrip("/"),
        api_key=_secret(entry, ("api_key",)),
        allow_insecure_http=bool(body.get("allow_insecure_http", False)),
        location=entry.location(key=True),
        url_location=entry.location(("url",)) if body.get("url") else None,
    )


# shared by every connector that declares none (frozen, or never written to): at 100,000
# connectors, one object each was 13 MB
_NO_LIFECYCLE = Lifecycle()
_NO_SYNCS: Mapping[str, Schedule] = MappingProxyType({})


def _connector(entry: Entry) -> Connector:
    body = entry.body
    credentials: dict[str, Secret] = {}
    for key, value in (body.get("credentials") or {}).items():
        if key == "type":
            credentials[key] = AuthMethod(value)
        else:
            secret = _secret(entry, ("credentials", key))
            if secret is not None:
                credentials[key] = secret
    lifecycle = body.get("lifecycle") or {}
    return Connector(
        name=entry.name,
        provider=body["provider"],
        source=body["source"],
        target=body.get("target"),
        description=body.get("description"),
        scope=body.get("scope") or {},
        schedule=_schedule(body["schedule"]) if body.get("schedule") else None,
        syncs={name: _schedule(s) for name, s in body["syncs"].items()} if body.get("syncs") else _NO_SYNCS,
        member=body.get("member") or None,
        credentials=credentials,
        sync_on_apply=bool(body.get("sync_on_apply", False)),
        lifecycle=Lifecycle(prevent_destroy=bool(lifecycle.get("prevent_destroy", False)),
                            ignore_changes=tuple(lifecycle.get("ignore_changes") or ()),
                            create_before_destroy=lifecycle.get("create_before_destroy")) if lifecycle else _NO_LIFECYCLE,
        location=entry.location(key=True),
    )


def _state(entry: Entry | None) -> StateConfig:
    if entry is None:
        return StateConfig()
    body = entry.body
    return StateConfig(backend=body.get("backend", "file"), path=body.get("path"), dsn=_secret(entry, ("dsn",)),
                       name=body.get("name"))


def build(merged: Merged, root: str, files: list[str]) -> Manifest:
    return Manifest(
        root=root,
        files=tuple(files),
        providers={name: _provider(e) for name, e in merged.providers.items()},
        connectors={name: _connector(e) for name, e in merged.connectors.items()},
        state=_state(merged.state),
        moved=tuple(MovedEntry(e.body["from"], e.body["to"], e.location()) for e in merged.moved),
    )
