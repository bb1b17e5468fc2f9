"""Shared helpers for multi-platform end-to-end tests: one manifest shape for all five platforms,
a project directory that records every byte the CLI wrote, live-state readers that map each
platform's objects back to manifest names (to count duplicates and lost changes), and a scanner
for secrets in every output, file and log.

A connector here is described by a :class:`Spec`: a scope value (the field every platform can
update in place), ``alt`` (the field that forces a replace on that platform: source or target),
and which token variable its credential reads (switching it rotates the credential).
"""
from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Callable
from urllib.parse import quote, quote_plus

from conftest import EMU_HTTP, FAST_RETRY, Result, run_cli

PLATFORMS = ("airweave", "nango", "airstore", "aimable", "connectors-api")

API_KEY = "plat-key-7c1e9a2b5d"
# TOK_B has characters that JSON escapes: an error echoing the request body shows it escaped
TOKENS = {"TOK_A": "tok-AAAA-1111-s3cr3t+/=", "TOK_B": 'tok-BBBB-2222-"r0t\\at3d"-\u00e9'}
SECRETS = (API_KEY, *TOKENS.values())


@dataclass(frozen=True)
class Spec:
    scope: str = "v1"  # a value updated in place
    alt: bool = False  # the replace-forcing field (source or target) switched
    token: str = "TOK_A"  # which credential variable


@dataclass(frozen=True)
class Platform:
    type: str
    targets: tuple[str, ...]
    connector: Callable[[str, Spec], list[str]]  # manifest lines for one connector
    live: Callable[[dict], list[tuple[str, str, bool]]]  # emulator state -> (name, scope, alt) per object


# the "alt" source: another real direct-token source with a required config field (Freshdesk:
# FreshdeskAuthConfig.api_key, FreshdeskConfig.domain; providers/airweave_auth.py). GitLab is OAuth
# only on the real server, so it cannot stand in for a token source.
AIRWEAVE_ALT = "freshdesk"


def _airweave(name: str, s: Spec) -> list[str]:
    if s.alt:
        return [f"    source: {AIRWEAVE_ALT}", "    target: coll-one", "    scope:", f"      domain: {s.scope}",
                "    credentials:", f"      api_key: ${{{s.token}}}"]
    return ["    source: github", "    target: coll-one",
            "    scope:", f"      repo_name: org/{name}", f"      branch: {s.scope}",
            "    credentials:", f"      personal_access_token: ${{{s.token}}}"]


def _airweave_live(state: dict) -> list[tuple[str, str, bool]]:
    out = []
    for c in state["connections"].values():
        alt = c["short_name"] == AIRWEAVE_ALT
        out.append((c["name"], (c.get("config") or {}).get("domain" if alt else "branch"), alt))
    return out


def _nango(name: str, s: Spec) -> list[str]:
    return [f"    source: {'gitlab-prod' if s.alt else 'github-prod'}", "    scope:", f"      team: {s.scope}",
            "    credentials:", "      type: OAUTH2", f"      access_token: ${{{s.token}}}"]


def _nango_live(state: dict) -> list[tuple[str, str, bool]]:
    return [(c["connection_id"], (c.get("metadata") or {}).get("team"), c["provider_config_key"] == "gitlab-prod")
            for c in state["connections"].values()]


def _member(name: str) -> str:
    """Airstore member ids are UUIDs: one per connector name, and back (the emulator enrols any UUID
    used in ws_one: its target ``ws_one/*``)."""
    member = str(uuid.uuid5(uuid.NAMESPACE_URL, f"member/{name}"))
    _MEMBERS[member] = name
    return member


_MEMBERS: dict[str, str] = {}


def _airstore(name: str, s: Spec) -> list[str]:
    return [f"    source: {'gdrive' if s.alt else 'gmail'}", "    target: ws_one", f"    member: {_member(name)}",
            "    scope:", f"      scope: https://example.com/auth/{s.scope}",
            "    credentials:", f"      access_token: ${{{s.token}}}"]


def _airstore_live(state: dict) -> list[tuple[str, str, bool]]:
    return [(_MEMBERS[c["member"]], c["scope"].rsplit("/", 1)[-1], c["integration_type"] == "gdrive")
            for c in state["connections"].values()]


def _aimable(name: str, s: Spec) -> list[str]:
    return ["    source: google-drive", f"    target: sp1/{'col2' if s.alt else 'col1'}",
            "    scope:", f"      folder_ids: [f-{name}, {s.scope}]",
            "    credentials:", f"      access_token: ${{{s.token}}}"]


def _aimable_live(state: dict) -> list[tuple[str, str, bool]]:
    return [(c["scope_config"]["folder_ids"][0][2:], c["scope_config"]["folder_ids"][1], c["collection_id"] == "col2")
            for c in state["connectors"].values()]


def _capi(name: str, s: Spec) -> list[str]:
    return ["    source: s3", f"    target: {'col_two' if s.alt else 'col_one'}",
            "    scope:", "      bucket: bkt", "      region: us-east-1", f"      prefix: /{s.scope}/",
            "    credentials:", "      accessKeyId: ${TOK_B}", f"      secretAccessKey: ${{{s.token}}}"]


def _capi_live(state: dict) -> list[tuple[str, str, bool]]:
    return [(c["name"], c["config"]["prefix"].strip("/"), c["collection"] == "col_two")
            for c in state["connectors"].values()]


PLATFORM = {
    "airweave": Platform("airweave", ("coll-one",), _airweave, _airweave_live),
    "nango": Platform("nango", ("github-prod", "gitlab-prod"), _nango, _nango_live),
    "airstore": Platform("airstore", ("ws_one", "ws_one/*"), _airstore, _airstore_live),
    "aimable": Platform("aimable", ("sp1/col1", "sp1/col2"), _aimable, _aimable_live),
    "connectors-api": Platform("connectors-api", ("col_one", "col_two"), _capi, _capi_live),
}


def live_object_ids(platform: str, state: dict) -> set[str]:
    """The ids the adapters record, as the emulator stores them."""
    if platform == "nango":
        return {f'{c["provider_config_key"]}/{c["connection_id"]}' for c in state["connections"].values()}
    return {str(k) for k in state["connections" if "connections" in state else "connectors"]} | {
        str(c.get("id")) for c in state.get("connections", state.get("connectors", {})).values()}


def manifest(platform: str, connectors: dict[str, Spec], *, extra_provider: str = "") -> str:
    p = PLATFORM[platform]
    out = ["version: 1", "providers:", "  p:", f"    type: {platform}", "    url: ${P_URL}",
           "    api_key: ${P_KEY}" + extra_provider]
    if not connectors:
        return "\n".join(out + ["connectors: {}"]) + "\n"
    out.append("connectors:")
    for name, spec in connectors.items():
        out += [f"  {name}:", "    provider: p", *p.connector(name, spec)]
    return "\n".join(out) + "\n"


def start(emulator, platform: str, **config):
    """An emulator for ``platform`` with the targets the manifests use (``emulator`` is the fixture)."""
    return emulator(platform, targets=list(PLATFORM[platform].targets), api_key=API_KEY, **config)


def emu_state(emu) -> dict:
    return EMU_HTTP.get(f"{emu.url}/_emulator/state", timeout=10).json()


def emu_stats(emu) -> dict:
    return EMU_HTTP.get(f"{emu.url}/_emulator/stats", timeout=10).json()


def set_faults(emu, **knobs: float) -> None:
    """Change the running emulator's fault knobs (it reads its config on every request)."""
    for k, v in knobs.items():
        setattr(emu.config, k, v)


def quiet(emu) -> None:
    set_faults(emu, fail_rate=0.0, throttle_rate=0.0, drop_rate=0.0, slow_rate=0.0, latency_ms=0.0)


def secret_forms(secret: str) -> set[str]:
    raw = secret.encode()
    forms = {secret, quote(secret, safe=""), quote_plus(secret), json.dumps(secret)[1:-1],
             json.dumps(secret, ensure_ascii=False)[1:-1]}
    for enc in (base64.b64encode, base64.urlsafe_b64encode):
        b = enc(raw).decode()
        forms |= {b, b.rstrip("=")}
    return forms


def scan_for_secrets(blobs: list[str], secrets: tuple[str, ...] = SECRETS) -> list[str]:
    """Every (secret form, where) found; [] when clean."""
    hits = []
    for secret in secrets:
        for form in secret_forms(secret):
            for i, blob in enumerate(blobs):
                if form in blob:
                    hits.append(f"form {form[:4]}... of a secret in blob #{i}")
    return hits


class Project:
    """A manifest directory for one platform and every byte the tool wrote for it."""

    def __init__(self, root: Path, emu, platform: str) -> None:
        self.root = root
        self.emu = emu
        self.platform = platform
        self.env = {"P_URL": emu.url, "P_KEY": API_KEY, **TOKENS}
        self.outputs: list[str] = []
        self.specs: dict[str, Spec] = {}
        root.mkdir(parents=True, exist_ok=True)

    def write(self, specs: dict[str, Spec], **kw: str) -> None:
        self.specs = dict(specs)
        (self.root / "connectors.yaml").write_text(manifest(self.platform, specs, **kw))

    def run(self, *args: str, timeout: float = 180, **env: str) -> Result:
        result = run_cli(*args, env={**self.env, **env}, timeout=timeout)
        self.outputs += [result.stdout, result.stderr]
        return result

    def plan(self, *extra: str, **env: str) -> Result:
        return self.run("plan", str(self.root), "--detailed-exitcode", *extra, **env)

    def apply(self, *extra: str, **env: str) -> Result:
        return self.run("apply", str(self.root), "--yes", *extra, **env)

    def popen_apply(self, *extra: str, **env: str) -> subprocess.Popen:
        full = {k: v for k, v in os.environ.items() if not k.startswith(("RECONCILE_", "NO_COLOR"))}
        full.update(self.env, NO_COLOR="1", RECONCILE_RETRY_BASE_DELAY=FAST_RETRY, **env)
        return subprocess.Popen([sys.executable, "-m", "reconciler", "apply", str(self.root), "--yes", *extra],
                                env=full, stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def collect(self, proc: subprocess.Popen) -> tuple[str, str]:
        out, err = proc.communicate(timeout=120)
        self.outputs += [out.decode(errors="replace"), err.decode(errors="replace")]
        return self.outputs[-2], self.outputs[-1]

    def live(self) -> list[tuple[str, str, bool]]:
        return PLATFORM[self.platform].live(emu_state(self.emu))

    def problems(self) -> dict[str, list]:
        """Duplicates (an identity live more than once), lost (desired but absent), stale (a change
        not carried out), strays (live but not desired)."""
        live = self.live()
        counts = Counter(name for name, _, _ in live)
        desired = self.specs
        return {
            "duplicated": sorted(n for n, c in counts.items() if c > 1),
            "lost": sorted(n for n in desired if n not in counts),
            "stale": sorted(n for n, scope, alt in live if n in desired
                            and (scope, alt) != (desired[n].scope, desired[n].alt)),
            "strays": sorted(n for n in counts if n not in desired),
        }

    def state_ids(self) -> dict[str, str]:
        from reconciler.state.file import FileBackend

        state = FileBackend(self.root / ".reconcile" / "state.json").load()  # the journal replayed too
        return {n: e.id for n, e in state.entries.items()}

    def assert_converged(self) -> None:
        """No duplicate, nothing lost or stale, state ids all live, and an empty plan (exit 0)."""
        assert self.problems() == {"duplicated": [], "lost": [], "stale": [], "strays": []}, self.problems()
        r = self.plan()
        assert r.code == 0, r.output
        assert "No changes." in r.stdout, r.stdout
        ids = self.state_ids()
        assert set(ids) == set(self.specs), ids
        live_ids = live_object_ids(self.platform, emu_state(self.emu))
        assert all(i in live_ids for i in ids.values()), (ids, live_ids)  # every state entry exists live

    def assert_no_secret_written(self) -> None:
        blobs = list(self.outputs)
        for path in self.root.rglob("*"):
            if path.is_file():
                blobs.append(path.read_bytes().decode("utf-8", "replace"))
        hits = scan_for_secrets(blobs)
        assert not hits, "\n".join(hits + [blobs[int(h.rsplit("#", 1)[1])][:3000] for h in hits[:1]])


def kill_when(proc: subprocess.Popen, emu, predicate: Callable[[dict], bool], limit: float = 60) -> bool:
    """SIGKILL ``proc`` as soon as ``predicate(emulator request counts)`` holds; False if it ended first."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline and proc.poll() is None:
        if predicate(emu.stats["requests"]):
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            return True
        time.sleep(0.005)
    return False
