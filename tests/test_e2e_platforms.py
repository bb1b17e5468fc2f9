"""One engine, five platforms: the same end-to-end story through the CLI against each emulator,
then all five in one manifest directory, planned and applied at once."""
from __future__ import annotations

import base64
import re
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import pytest
import yaml

from conftest import EMU_HTTP, run_cli
from reconciler.model import Connector, ProviderConfig, Secret
from reconciler.providers import provider_class

API_KEY = "platform-key-8d1f0c"
TOKEN_A = "tok-AAAA-9f8e7d6c5b"
TOKEN_B = "tok-BBBB-1a2b3c4d5e"


@dataclass
class Platform:
    type: str
    emu_targets: list[str]
    source: str
    target: str | None
    scope: Callable[[str, str], dict[str, Any]]  # (connector name, variant) -> scope
    credentials: dict[str, str]  # field -> value; "${TOK}" is substituted
    extra: Callable[[str], dict[str, Any]] = field(default=lambda name: {})

    def connector(self, name: str, variant: str = "v1") -> dict[str, Any]:
        body: dict[str, Any] = {"provider": self.type, "source": self.source}
        if self.target:
            body["target"] = self.target
        body["scope"] = self.scope(name, variant)
        body.update(self.extra(name))
        body["credentials"] = dict(self.credentials)
        return body


PLATFORMS = {
    p.type: p
    for p in [
        Platform("airweave", ["docs-ab123"], "github", "docs-ab123",
                 lambda n, v: {"repo_name": f"company/{n}", "branch": v},
                 {"personal_access_token": "${TOK}"}),
        Platform("nango", ["github-prod"], "github-prod", None,
                 lambda n, v: {"team": n, "tier": v},
                 {"type": "OAUTH2", "access_token": "${TOK}"}),
        # members are UUIDs on Airstore; "ws_abc123/*" lets the emulator take any as a member there
        Platform("airstore", ["ws_abc123", "ws_abc123/*"], "github", "ws_abc123",
                 lambda n, v: {"scope": f"repo:{v}"},
                 {"access_token": "${TOK}"},
                 # the hand-made one is shared: a member connection made outside names its member only by
                 # Airstore's internal number, so import skips it (tests/test_airstore_e2e.py)
                 extra=lambda n: {} if n == "hand-made-one" else {"member": str(uuid.uuid5(uuid.NAMESPACE_URL, n))}),
        Platform("aimable", ["sp1/col1"], "google-drive", "sp1/col1",
                 lambda n, v: {"folder_ids": [f"{n}-{v}"]},
                 {"access_token": "${TOK}"}),
        Platform("connectors-api", ["col_abc"], "s3", "col_abc",
                 lambda n, v: {"bucket": f"{n}-bucket", "region": "us-east-1", "prefix": f"/{v}/"},
                 {"accessKeyId": "${TOK}", "secretAccessKey": "${TOK}"}),
    ]
}


def write_manifest(path: Path, providers: dict[str, str], connectors: dict[str, dict]) -> None:
    doc = {
        "version": 1,
        "providers": {name: {"type": name, "url": f"${{{_var(name)}_URL}}", "api_key": "${API_KEY}"} for name in providers},
        "connectors": connectors,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(doc, sort_keys=False))


def _var(type_name: str) -> str:
    return type_name.upper().replace("-", "_")


def live_objects(platform: Platform, url: str):
    cfg = ProviderConfig(name=platform.type, type=platform.type, url=url, api_key=Secret(API_KEY))
    provider = provider_class(platform.type)(cfg)
    try:
        return list(provider.list([t for t in [platform.target] if t]))
    finally:
        provider.close()


def make_unmanaged(platform: Platform, url: str) -> str:
    """A connector made by hand (straight through the adapter), which no manifest names."""
    cfg = ProviderConfig(name=platform.type, type=platform.type, url=url, api_key=Secret(API_KEY))
    provider = provider_class(platform.type)(cfg)
    body = platform.connector("hand-made-one")
    creds = {k: Secret(TOKEN_A if v == "${TOK}" else v) for k, v in body["credentials"].items()}
    connector = Connector(name="hand-made-one", provider=platform.type, source=platform.source, target=platform.target,
                          scope=body["scope"], member=body.get("member"), credentials=creds)
    try:
        return provider.create(connector, idempotency_key="hand-made").id
    finally:
        provider.close()


def scan_for_secrets(outputs: list[str], root: Path) -> None:
    blobs = outputs + [p.read_text(errors="replace") for p in root.rglob("*") if p.is_file()]
    for secret in (API_KEY, TOKEN_A, TOKEN_B):
        for form in (secret, base64.b64encode(secret.encode()).decode().rstrip("=")):
            assert not any(form in b for b in blobs), "a secret leaked into the tool's output or files"


@pytest.mark.parametrize("type_name", list(PLATFORMS))
def test_platform_lifecycle(type_name, emulator, tmp_path):
    platform = PLATFORMS[type_name]
    emu = emulator(type_name, targets=platform.emu_targets, api_key=API_KEY)
    root = tmp_path / "m"
    env = {f"{_var(type_name)}_URL": emu.url, "API_KEY": API_KEY, "TOK": TOKEN_A}
    outputs: list[str] = []

    def cli(*args: str, **overrides: str):
        r = run_cli(*args, env={**env, **overrides})
        outputs.extend([r.stdout, r.stderr])
        return r

    def manifest(connectors: dict[str, dict]) -> None:
        write_manifest(root / "connectors.yaml", {type_name: type_name}, connectors)

    manifest({"conn-alpha": platform.connector("conn-alpha"), "conn-bravo": platform.connector("conn-bravo")})
    r = cli("apply", str(root), "--yes")
    assert r.code == 0, r.output
    assert "2 added" in r.stdout
    assert len(live_objects(platform, emu.url)) == 2
    r = cli("plan", str(root), "--detailed-exitcode")
    assert r.code == 0, r.output

    # scope change: in place
    ids = sorted(o.id for o in live_objects(platform, emu.url))
    manifest({"conn-alpha": platform.connector("conn-alpha", "v2"), "conn-bravo": platform.connector("conn-bravo")})
    r = cli("plan", str(root), "--detailed-exitcode")
    assert r.code == 2 and f"# {type_name}.conn-alpha will be updated in place" in r.stdout, r.output
    assert cli("apply", str(root), "--yes").code == 0
    assert sorted(o.id for o in live_objects(platform, emu.url)) == ids
    assert cli("plan", str(root), "--detailed-exitcode").code == 0

    # rotated credential: an update
    r = cli("plan", str(root), "--detailed-exitcode", TOK=TOKEN_B)
    assert r.code == 2 and "(credentials rotated)" in r.stdout, r.output
    assert cli("apply", str(root), "--yes", TOK=TOKEN_B).code == 0
    assert cli("plan", str(root), "--detailed-exitcode", TOK=TOKEN_B).code == 0

    # a hand-made connector is reported, and survives the deletion of a removed one
    hand_made = make_unmanaged(platform, emu.url)
    manifest({"conn-alpha": platform.connector("conn-alpha", "v2")})
    r = cli("plan", str(root), "--detailed-exitcode", TOK=TOKEN_B)
    assert r.code == 2, r.output
    assert f"# {type_name}.conn-bravo will be destroyed" in r.stdout
    assert f"! 1 unmanaged connector on {type_name}" in r.stdout
    assert cli("apply", str(root), "--yes", TOK=TOKEN_B).code == 0
    live_ids = {o.id for o in live_objects(platform, emu.url)}
    assert hand_made in live_ids and len(live_ids) == 2
    assert cli("plan", str(root), "--detailed-exitcode", TOK=TOKEN_B).code == 0
    scan_for_secrets(outputs, root)


def test_all_five_platforms_in_one_plan(emulator, tmp_path):
    root = tmp_path / "mixed"
    env = {"API_KEY": API_KEY, "TOK": TOKEN_A}
    for type_name, platform in PLATFORMS.items():
        emu = emulator(type_name, targets=platform.emu_targets, api_key=API_KEY)
        env[f"{_var(type_name)}_URL"] = emu.url
        # one file per platform, in a directory tree: all of them form one desired state
        write_manifest(root / type_name / "connectors.yaml", {type_name: type_name},
                       {f"{type_name}-one": platform.connector(f"{type_name}-one")})
    r = run_cli("plan", str(root), "--detailed-exitcode", env=env)
    assert r.code == 2, r.output
    assert r.stdout.startswith("reconcile plan: 5 providers, 5 connectors (0 unchanged)")
    assert "Plan: 5 to add, 0 to change, 0 to replace, 0 to destroy." in r.stdout
    headings = [line.strip() for line in r.stdout.splitlines() if line.strip().startswith("# ")]
    assert headings == sorted(headings)  # grouped by provider
    r = run_cli("apply", str(root), "--yes", env=env)
    assert r.code == 0 and "5 added" in r.stdout, r.output
    r = run_cli("plan", str(root), "--detailed-exitcode", env=env)
    assert r.code == 0, r.output
    md = run_cli("plan", str(root), "--format", "markdown", env=env)
    assert md.code == 0 and md.stdout.count("<details") == 5
    scan_for_secrets([r.stdout, r.stderr, md.stdout], root)


@pytest.mark.parametrize("type_name", list(PLATFORMS))
def test_import_adopts_hand_made_connectors(type_name, emulator, tmp_path):
    platform = PLATFORMS[type_name]
    emu = emulator(type_name, targets=platform.emu_targets, api_key=API_KEY)
    root = tmp_path / "m"
    env = {f"{_var(type_name)}_URL": emu.url, "API_KEY": API_KEY, "TOK": TOKEN_A}
    write_manifest(root / "connectors.yaml", {type_name: type_name}, {"conn-alpha": platform.connector("conn-alpha")})
    assert run_cli("apply", str(root), "--yes", env=env).code == 0
    make_unmanaged(platform, emu.url)
    if type_name == "nango":  # made through our adapter it carries our marker; by hand it would not
        EMU_HTTP.patch(f"{emu.url}/connections/hand-made-one", params={"provider_config_key": platform.source},
                    json={"tags": {}}, headers={"Authorization": f"Bearer {API_KEY}"}).raise_for_status()

    r = run_cli("import", str(root), "--provider", type_name, env=env)
    assert r.code == 0, r.output
    text = (root / f"imported-{type_name}.yaml").read_text()
    variables = sorted(set(re.findall(r"\$\{(IMPORTED_[A-Z0-9_]+)\}", text)))
    assert variables and all(v in r.stdout for v in variables), text  # credentials as placeholders, named
    assert TOKEN_A not in text and TOKEN_A not in r.output

    imported_env = env | {v: f"value-{i}-of-imported-secret" for i, v in enumerate(variables)}
    r = run_cli("plan", str(root), "--detailed-exitcode", env=imported_env)
    assert r.code == 0, r.output
    assert "unmanaged" not in r.stdout
