"""The loader's pure logic, in-process: variables, durations, the typed model, hostile files."""
from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from reconciler.errors import ManifestError
from reconciler.manifest import load
from reconciler.manifest.durations import parse_duration
from reconciler.manifest.schema import connector_errors, manifest_schema
from reconciler.manifest.variables import Ref, VarSyntaxError, parse, resolve
from reconciler.model import Schedule, Secret

MANIFEST = """\
version: 1
providers:
  aw:
    type: airweave
    url: ${AW_URL:-https://api.airweave.ai}
    api_key: ${AW_KEY}
connectors:
  docs-github:
    provider: aw
    source: github
    target: documentation-ab123
    description: ${DESC:-Product docs}
    scope: {repo_name: company/docs, branch: main}
    schedule: {cron: "0  */6 * * *"}
    credentials:
      personal_access_token: ${GH_TOKEN}
    sync_on_apply: true
    lifecycle: {prevent_destroy: true, ignore_changes: [scope.branch]}
"""
ENV = {"AW_KEY": "aw-key-secret-value", "GH_TOKEN": "ghp-secret-value"}


def write(tmp_path: Path, text: str, name: str = "m.yaml") -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def diagnostics(path: Path, **kwargs) -> list[str]:
    with pytest.raises(ManifestError) as info:
        load(path, **kwargs)
    return [str(d) for d in info.value.diagnostics]


def test_load_builds_typed_connectors_with_secrets_and_locations(tmp_path):
    path = write(tmp_path, MANIFEST)
    manifest = load(path, env=ENV)
    assert manifest.root == str(path) and manifest.files == (str(path),)
    provider = manifest.providers["aw"]
    assert provider.url == "https://api.airweave.ai" and provider.type == "airweave"
    assert isinstance(provider.api_key, Secret) and provider.api_key.reveal() == "aw-key-secret-value"
    assert provider.location.line == 3
    c = manifest.connectors["docs-github"]
    assert (c.source, c.target, c.description) == ("github", "documentation-ab123", "Product docs")
    assert c.scope == {"repo_name": "company/docs", "branch": "main"}
    assert c.schedule == Schedule(cron="0 */6 * * *")
    assert c.credentials["personal_access_token"].reveal() == "ghp-secret-value"
    assert c.credentials["personal_access_token"].source == "GH_TOKEN"
    assert c.sync_on_apply and c.lifecycle.prevent_destroy and c.lifecycle.ignore_changes == ("scope.branch",)
    assert (c.location.file, c.location.line, c.location.column) == (str(path), 8, 3)
    assert "ghp-secret-value" not in repr(c) and "aw-key-secret-value" not in repr(manifest)


def test_env_values_are_not_expanded_again_and_escape_gives_a_literal(tmp_path):
    text = MANIFEST.replace("${DESC:-Product docs}", "'$${NOT_A_VAR} and ${DESC}'")
    manifest = load(write(tmp_path, text), env={**ENV, "DESC": "${GH_TOKEN}"})
    assert manifest.connectors["docs-github"].description == "${NOT_A_VAR} and ${GH_TOKEN}"


def test_newlines_from_env_are_refused_in_urls_but_fine_in_credentials(tmp_path):
    path = write(tmp_path, MANIFEST.replace("${AW_URL:-https://api.airweave.ai}", "${AW_URL}"))
    env = {**ENV, "AW_URL": "https://x.example\nHost: evil", "GH_TOKEN": "line1\nline2"}
    errors = diagnostics(path, env=env)
    assert len(errors) == 1 and "AW_URL contains a line break" in errors[0] and "evil" not in errors[0]
    env["AW_URL"] = "https://x.example"
    assert load(path, env=env).connectors["docs-github"].credentials["personal_access_token"].reveal() == "line1\nline2"


def test_no_env_checks_syntax_only_and_leaves_placeholders(tmp_path):
    path = write(tmp_path, MANIFEST)
    assert len(diagnostics(path, env={})) == 2  # AW_KEY and GH_TOKEN unset
    manifest = load(path, env={"GH_TOKEN": "ignored-under-no-env"}, resolve_env=False)
    assert manifest.connectors["docs-github"].credentials["personal_access_token"].reveal() == ""
    assert manifest.providers["aw"].url == "https://api.airweave.ai"  # the default applies
    bad = write(tmp_path, MANIFEST.replace("${GH_TOKEN}", "${GH_TOKEN"), "bad.yaml")
    errors = diagnostics(bad, resolve_env=False)
    assert len(errors) == 1 and "invalid ${...} reference in a secret" in errors[0], errors


def test_every_error_is_reported_not_just_the_first(tmp_path):
    text = MANIFEST.replace("schedule:", "shedule:").replace("source: github", "source: githb") \
        .replace("${GH_TOKEN}", "ghp_literal_value_123")
    errors = diagnostics(write(tmp_path, text), env=ENV)
    assert len(errors) == 3, errors
    assert not any("ghp_literal_value_123" in e for e in errors)


def test_directory_is_one_state_and_hidden_dirs_are_skipped(tmp_path):
    head, rest = MANIFEST.split("connectors:\n")
    write(tmp_path, head, "providers.yaml")
    write(tmp_path, "version: 1\nconnectors:\n" + rest, "team/connectors.yml")
    write(tmp_path, "not: [valid", ".reconcile/junk.yaml")
    write(tmp_path, "not: [valid", ".git/x.yaml")
    manifest = load(tmp_path, env=ENV)
    assert list(manifest.connectors) == ["docs-github"] and list(manifest.providers) == ["aw"]
    assert [Path(f).name for f in manifest.files] == ["providers.yaml", "connectors.yml"]


def test_oversized_file_is_refused_without_reading_it_all(tmp_path):
    path = tmp_path / "big.yaml"
    with open(path, "wb") as fh:
        fh.write(b"version: 1\n")
        fh.truncate(10 * 1024 * 1024 + 1)
    errors = diagnostics(path)
    assert len(errors) == 1 and "limited to 10 MB" in errors[0]


def test_merge_keys_work_and_explicit_keys_win(tmp_path):
    text = MANIFEST.replace("connectors:\n", "x-defaults: &d {provider: aw, source: notion}\nconnectors:\n")
    with pytest.raises(ManifestError):  # x-defaults is not a key of the language
        load(write(tmp_path, text), env=ENV)
    text = MANIFEST.replace("    provider: aw\n    source: github\n", "    <<: {provider: aw, source: notion}\n    source: github\n")
    assert load(write(tmp_path, text, "m2.yaml"), env=ENV).connectors["docs-github"].source == "github"


@pytest.mark.parametrize("text,seconds", [("30s", 30), ("15m", 900), ("1h", 3600), ("1d", 86400), ("1h30m", 5400)])
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "1", "1 hour", "h1", "1.5h", "-1h"])
def test_bad_durations(text):
    with pytest.raises(ValueError):
        parse_duration(text)


def test_variable_parsing_and_resolution():
    assert parse("a${X}b$${Y}") == ("a", Ref("X"), "b${Y}")
    assert parse("${X:-d}") == (Ref("X", "-", "d"),) and parse("${X:?why}") == (Ref("X", "?", "why"),)
    for bad in ("${", "${1X}", "${X-d}", "${A:-${B}}", "${}"):
        with pytest.raises(VarSyntaxError):
            parse(bad)
    r = resolve(parse("${X:-dflt}/${Y}"), {"Y": "${Z}"})
    assert r.value == "dflt/${Z}" and r.from_env == ("Y",) and not r.errors
    r = resolve(parse("${X:?say why}"), {"X": ""})
    assert r.unresolved == ("X",) and r.errors == ("environment variable X is not set: say why",)


def test_schema_narrowing_is_available_per_connector():
    schema = manifest_schema()
    assert schema["$schema"].endswith("2020-12/schema")
    assert {"connector_airweave", "connector_nango", "connector_airstore", "connector_aimable",
            "connector_connectors-api"} <= set(schema["$defs"])
    ok = {"provider": "p", "source": "gmail", "target": "ws_1", "credentials": {"api_key": "${K}"}}
    assert connector_errors("team-gmail", ok, "airstore") == []
    assert connector_errors("team-gmail", {**ok, "description": "x"}, "airstore")
    # GitHub's direct credentials are its GitHubAuthConfig's personal_access_token, not an api_key
    github = {**ok, "source": "github", "target": "c-1", "scope": {"repo_name": "a/b"},
              "credentials": {"personal_access_token": "${K}"}}
    assert connector_errors("abc", github, "airweave") == \
        ["connector name 'abc': airweave connector names are 4 to 42 characters"]
