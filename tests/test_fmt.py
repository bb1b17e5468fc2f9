"""``reconcile fmt``: canonical layout, comments kept, idempotent, meaning unchanged, --check."""
from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest

from reconciler.manifest import load

from conftest import ROOT, run_cli

MESSY = """\
# yaml-language-server: $schema=../schemas/manifest.schema.json
connectors:
    # the docs repository
    docs-github:
        schedule: {cron: '0 */6 * * *'}
        credentials:
            personal_access_token: ${GITHUB_TOKEN}
        source: github   # the Airweave source short name (its column is kept)
        provider: airweave
        lifecycle:
            ignore_changes:
            - scope.branch
        scope:
            repo_name: 'company/docs'
            branch: "main"
        target: documentation-ab123
    wiki:
        sync_on_apply: true
        provider: airweave
        source: notion
        target: documentation-ab123
        credentials:
            type: oauth_token
            access_token: ${NOTION_TOKEN}



    # an interval schedule
    slack:
        scope:
            team: acme
            archived: yes
            mode: 'no'
        provider: nango
        source: slack-prod
        syncs:
            messages:
                every: 1h
        credentials: {type: OAUTH2, access_token: '${SLACK_TOKEN}'}
providers:
    nango: {type: nango, api_key: '${NANGO_KEY}'}
    airweave:
        api_key: ${AIRWEAVE_API_KEY}
        type: airweave
version: 1
"""

CANONICAL = """\
# yaml-language-server: $schema=../schemas/manifest.schema.json
version: 1

providers:
  nango: {type: nango, api_key: "${NANGO_KEY}"}
  airweave:
    type: airweave
    api_key: ${AIRWEAVE_API_KEY}

connectors:
  # the docs repository
  docs-github:
    provider: airweave
    source: github       # the Airweave source short name (its column is kept)
    target: documentation-ab123
    scope:
      repo_name: "company/docs"
      branch: "main"
    schedule: {cron: "0 */6 * * *"}
    credentials:
      personal_access_token: ${GITHUB_TOKEN}
    lifecycle:
      ignore_changes:
        - scope.branch

  wiki:
    provider: airweave
    source: notion
    target: documentation-ab123
    credentials:
      type: oauth_token
      access_token: ${NOTION_TOKEN}
    sync_on_apply: true

  # an interval schedule
  slack:
    provider: nango
    source: slack-prod
    scope:
      team: acme
      archived: true
      mode: "no"
    syncs:
      messages:
        every: 1h
    credentials: {type: OAUTH2, access_token: "${SLACK_TOKEN}"}
"""

ENV = {"GITHUB_TOKEN": "tok-1", "NOTION_TOKEN": "tok-2", "SLACK_TOKEN": "tok-3", "AIRWEAVE_API_KEY": "key-a",
       "NANGO_KEY": "key-n"}  # secrets under 4 characters are refused


def _meaning(path: Path):
    """What the loader makes of a manifest, without the positions (which formatting moves)."""
    m = load(path, env=ENV)
    connectors = {n: dataclasses.replace(c, location=None) for n, c in m.connectors.items()}
    providers = {n: dataclasses.replace(p, location=None) for n, p in m.providers.items()}
    return connectors, providers, m.state, m.moved


@pytest.fixture
def messy(tmp_path: Path) -> Path:
    path = tmp_path / "connectors.yaml"
    path.write_text(MESSY)
    return path


def test_check_lists_the_file_and_changes_nothing(messy):
    result = run_cli("fmt", str(messy), "--check")
    assert result.code == 1, result.output
    assert result.stdout.strip() == str(messy)
    assert messy.read_text() == MESSY


def test_fmt_writes_the_canonical_form_keeping_comments(messy):
    messy.chmod(0o644)
    result = run_cli("fmt", str(messy))
    assert result.code == 0, result.output
    assert messy.read_text() == CANONICAL
    assert messy.stat().st_mode & 0o777 == 0o644


def test_fmt_never_changes_meaning(messy, tmp_path):
    before = _meaning(messy)
    assert run_cli("fmt", str(messy)).code == 0
    assert _meaning(messy) == before
    # `yes` is a YAML 1.1 bool to the loader (it must not become the text "yes"); 'no' stays text
    scope = load(messy, env=ENV).connectors["slack"].scope
    assert scope["archived"] is True and scope["mode"] == "no"


def test_fmt_is_idempotent(messy):
    assert run_cli("fmt", str(messy)).code == 0
    once = messy.read_text()
    mtime = messy.stat().st_mtime_ns
    again = run_cli("fmt", str(messy))
    assert again.code == 0 and again.stdout == ""
    assert messy.read_text() == once and messy.stat().st_mtime_ns == mtime  # not even rewritten
    assert run_cli("fmt", str(messy), "--check").code == 0


def test_directory_lists_only_files_that_change(tmp_path):
    (tmp_path / "team").mkdir()
    (tmp_path / "team" / "a.yaml").write_text(MESSY)
    (tmp_path / "b.yml").write_text(CANONICAL.replace("docs-github", "other").replace("wiki", "w2")
                                    .replace("slack:", "s2:"))
    result = run_cli("fmt", str(tmp_path), "--check", "--diff")
    assert result.code == 1
    assert str(tmp_path / "team" / "a.yaml") in result.stdout and "b.yml" not in result.stdout
    assert "+version: 1" in result.stdout and "-version: 1" in result.stdout


def test_examples_keep_their_meaning_and_comments(tmp_path):
    copy = tmp_path / "examples"
    shutil.copytree(ROOT / "examples", copy, ignore=shutil.ignore_patterns(".*", "github-actions"))
    dirs = sorted(p for p in copy.iterdir() if p.is_dir() and list(p.glob("*.yaml")))
    before = {d: load(d, resolve_env=False) for d in dirs}
    texts = {f: f.read_text() for d in dirs for f in d.glob("*.yaml")}
    assert run_cli("fmt", str(copy)).code == 0  # one run over the whole tree
    for d in dirs:
        after = load(d, resolve_env=False)
        assert {n: dataclasses.replace(c, location=None) for n, c in after.connectors.items()} == \
            {n: dataclasses.replace(c, location=None) for n, c in before[d].connectors.items()}
    for f, text in texts.items():
        assert f.read_text().count("#") == text.count("#"), f  # every comment kept


def test_invalid_yaml_is_an_error_and_left_alone(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nconnectors: [unclosed\n")
    result = run_cli("fmt", str(bad))
    assert result.code == 1 and "not valid YAML" in result.stderr and "Traceback" not in result.output
    assert bad.read_text() == "version: 1\nconnectors: [unclosed\n"
