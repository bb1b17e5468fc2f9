"""One truth from validate to the server (issue 18): the manifest schema's per-type parts for
Aimable and the Connectors API are generated from ``reconciler.scope_rules``, and the emulators
validate with the same tables. These tests hold both sides to it: the checked-in schema is what
the tables generate; for every type, the schema and the emulator give the same verdict on the same
connector; and through the CLI, every type's minimal manifest validates and is created, while a
refused one stops at validate (file:line, exit 1) before any call."""
from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest
import yaml
import warnings

with warnings.catch_warnings():  # starlette nags about httpx; the client works the same
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from conftest import EMU_HTTP, run_cli
from reconciler import scope_rules
from reconciler.emulators.base import EmulatorConfig, build
from reconciler.manifest.schema import SCHEMA_FILE, validate_connector

KEY = "rules-key-31a7"
TARGETS = {"connectors-api": "col_rules", "aimable": "sp1/col1"}
# probe values: each field of each type gets every one; schema and emulator must agree on all
PROBES: list[Any] = ["", "   ", "x", "https://h.example", "http://h.example", "https://h.example\n", [], ["a"], [""], ["a", 2], 0, 5432,
                     70000, True, None, {"from": "2024-01-01"}, {"since": "x"}, {}]


def test_checked_in_schema_is_what_the_rules_generate():
    text = SCHEMA_FILE.read_text(encoding="utf-8")
    assert scope_rules.render_schema(text) == text, "run: python -m reconciler.scope_rules"


def test_no_invented_keys_and_the_type_enums_match():
    defs = yaml.safe_load(SCHEMA_FILE.read_text())["$defs"]
    assert defs["connector_connectors-api"]["properties"]["source"]["enum"] == list(scope_rules.CONNECTORS_API)
    assert defs["connector_aimable"]["properties"]["source"]["enum"] == list(scope_rules.AIMABLE)
    # the TypeConfig table (seeds/connectors-api.txt lines 54-62) names no folderIds / pageIds
    assert "folderIds" not in SCHEMA_FILE.read_text() and "pageIds" not in SCHEMA_FILE.read_text()
    assert set(scope_rules.CONNECTORS_API["s3"].scope) == {"bucket", "region", "prefix", "endpoint"}


def _client(platform: str) -> TestClient:
    app = build(platform, EmulatorConfig(api_key=KEY, targets=[TARGETS[platform]]))
    return TestClient(app, base_url="http://emulator", headers={"Authorization": f"Bearer {KEY}"})


_keys = itertools.count()


def emulator_accepts(client: TestClient, platform: str, type_name: str, scope: dict | None,
                     credentials: dict | None) -> bool:
    """What the emulator says to the body the adapter would send for this connector."""
    if platform == "connectors-api":
        body: dict[str, Any] = {"name": "n", "type": type_name, "collection": TARGETS[platform], "config": scope or {}}
        if credentials is not None:
            body["credentials"] = credentials
        r = client.post("/v1/connectors", json=body)
    else:
        body = {"provider_slug": type_name, "credential": credentials, "scope_config": scope or {}}
        r = client.post("/v1/spaces/sp1/collections/col1/connectors", json=body,
                        headers={"Idempotency-Key": f"k-{next(_keys)}"})
    assert r.status_code in (201, 422), r.text
    assert "secret-value" not in r.text  # refusals never echo what was sent
    return r.status_code == 201


def schema_accepts(platform: str, type_name: str, scope: dict | None, credentials: dict | None) -> bool:
    body: dict[str, Any] = {"provider": "p", "source": type_name, "target": TARGETS[platform]}
    if scope is not None:
        body["scope"] = scope
    if credentials is not None:
        body["credentials"] = {k: "${SECRET}" for k in credentials}
    return not validate_connector("c", body, platform)


def cases(platform: str, type_name: str):
    rules = scope_rules.PLATFORMS[platform][type_name]
    creds = None if rules.oauth else {k: "secret-value" for k, f in rules.credentials.items() if f.required}
    minimal = scope_rules.minimal_scope(rules) or None
    yield "minimal", minimal, creds
    yield "every field", {k: scope_rules.SAMPLES[f.kind] for k, f in rules.scope.items()} or None, creds
    for key in rules.scope:
        for i, probe in enumerate(PROBES):
            yield f"{key}={probe!r}", {**(minimal or {}), key: probe}, creds
        if rules.scope[key].required:
            yield f"without {key}", {k: v for k, v in (minimal or {}).items() if k != key}, creds
    yield "unknown scope key", {**(minimal or {}), "folderIds": ["x"]}, creds
    if not rules.oauth:
        yield "unknown credential", minimal, {**(creds or {}), "api_key": "secret-value"}
        for key, spec in rules.credentials.items():
            if spec.required:
                yield f"credential without {key}", minimal, {k: v for k, v in (creds or {}).items() if k != key}
        yield "no credentials", minimal, None
    else:
        yield "credentials on an OAuth type", minimal, {"token": "secret-value"}


@pytest.mark.parametrize("platform", list(scope_rules.PLATFORMS))
def test_schema_and_emulator_give_the_same_verdict_for_every_type(platform):
    client = _client(platform)
    disagreements = []
    for type_name in scope_rules.PLATFORMS[platform]:
        for label, scope, creds in cases(platform, type_name):
            by_schema = schema_accepts(platform, type_name, scope, creds)
            by_server = emulator_accepts(client, platform, type_name, scope, creds)
            if by_schema != by_server:
                disagreements.append(f"{type_name} {label}: validate {'ok' if by_schema else 'refuses'}, "
                                     f"emulator {'creates' if by_server else 'refuses'}")
    assert not disagreements, "\n".join(disagreements)


def _manifest(platform: str, url: str, connectors: dict[str, dict]) -> str:
    doc = {"version": 1, "providers": {"p": {"type": platform, "url": url, "api_key": "${API_KEY}"}},
           "connectors": connectors}
    return yaml.safe_dump(doc, sort_keys=False)


def _connector(platform: str, type_name: str, scope: dict | None, with_credentials: bool = True) -> dict:
    rules = scope_rules.PLATFORMS[platform][type_name]
    body: dict[str, Any] = {"provider": "p", "source": type_name, "target": TARGETS[platform]}
    if scope:
        body["scope"] = scope
    if with_credentials and not rules.oauth:
        body["credentials"] = {k: "${SECRET}" for k, f in rules.credentials.items() if f.required}
    return body


def _refused(platform: str, type_name: str) -> dict:
    """A connector of this type the emulator refuses: a required key missing, else an unknown one."""
    rules = scope_rules.PLATFORMS[platform][type_name]
    scope = scope_rules.minimal_scope(rules)
    required = [k for k, f in rules.scope.items() if f.required]
    if required:
        scope.pop(required[0])
    else:
        scope["folderIds"] = ["x"]
    return _connector(platform, type_name, scope)


@pytest.mark.parametrize("platform", list(scope_rules.PLATFORMS))
def test_every_types_minimal_manifest_is_created_and_a_refused_one_stops_at_validate(platform, emulator, tmp_path):
    emu = emulator(platform, api_key=KEY, targets=[TARGETS[platform]])
    env = {"API_KEY": KEY, "SECRET": "secret-value-7"}
    types = list(scope_rules.PLATFORMS[platform])
    good = tmp_path / "good" / "connectors.yaml"
    good.parent.mkdir()
    good.write_text(_manifest(platform, emu.url, {
        f"min-{t.replace('_', '-')}": _connector(platform, t, scope_rules.minimal_scope(scope_rules.PLATFORMS[platform][t]))
        for t in types}))
    r = run_cli("validate", str(good.parent), env=env)
    assert r.code == 0, r.output
    r = run_cli("apply", str(good.parent), "--yes", env=env)
    assert r.code == 0 and f"{len(types)} added" in r.stdout, r.output
    live = EMU_HTTP.get(emu.url + "/_emulator/state").json()["connectors"]
    assert sorted(c.get("type") or c.get("provider_slug") for c in live.values()) == sorted(types)

    bad = tmp_path / "bad" / "connectors.yaml"
    bad.parent.mkdir()
    bad.write_text(_manifest(platform, emu.url, {f"bad-{t.replace('_', '-')}": _refused(platform, t) for t in types}))
    EMU_HTTP.delete(emu.url + "/_emulator/stats")
    for command in ("validate", "plan"):
        r = run_cli(command, str(bad.parent), env=env)
        assert r.code == 1, r.output
        lines = bad.read_text().splitlines()
        for t in types:
            # each refused connector is named at its own line of the file
            name_line = lines.index(f"  bad-{t.replace('_', '-')}:") + 1
            assert any(f"{bad}:{n}:" in r.stderr for n in range(name_line, name_line + 12)), (t, r.stderr)
    assert EMU_HTTP.get(emu.url + "/_emulator/stats").json()["requests"] == {}, "validate made a network call"
