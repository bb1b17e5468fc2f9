"""Field ownership (issue #12 §1, DESIGN.md "Field ownership", docs/state.md): the three-way diff.

Pure planner tests for the three cases (declared, last applied and no longer declared, the
platform's own), then the CLI against the Airweave emulator over loopback. The e2e tests hold
whether or not the emulator fills in config defaults (the real server stores ``model_dump()``:
airweave-ai/airweave, backend/airweave/platform/configs/config.py, GitHub ``branch`` default ``""``).
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import pytest
import yaml

from conftest import run_cli
from reconciler.model import Connector, LiveConnector, Schedule
from reconciler.plan import planner
from reconciler.plan.model import ActionKind, Plan
from reconciler.plan.ownership import owned_paths, platform_owned, three_way
from reconciler.plan.render import render_text
from reconciler.providers.base import Capabilities
from reconciler.state.model import StateEntry

CAPS = Capabilities(updatable=frozenset({"description", "scope", "schedule", "syncs", "credentials"}),
                    replace_on=frozenset({"source", "target"}))
KEY = b"k" * 32


def _match(desired: dict, live: dict, applied: dict | None, *, entry: bool = True, ignore: tuple[str, ...] = ()
           ) -> planner.Match:
    from reconciler.model import Lifecycle

    c = Connector(name="docs", provider="p", source="github", target="coll",
                  lifecycle=Lifecycle(ignore_changes=ignore))
    obj = LiveConnector(id="id-1", key="docs", name="docs", source="github", target="coll", fields=live)
    e = StateEntry(name="docs", provider="p", type="t", id="id-1", key="docs", last_applied=applied) if entry else None
    return planner.Match(c, obj, e, desired, None, adopt=not entry)


def _decide(m: planner.Match, defaults: dict | None = None):
    planner.fill_unowned(m)
    return planner.decide(m, provider="p", provider_type="t", caps=CAPS, fingerprint_key=KEY, defaults=defaults)


BASE = {"source": "github", "target": "coll"}


def test_declared_fields_are_compared_with_live():
    live = {**BASE, "scope": {"repo_name": "org/a", "branch": "main"}}
    desired = {**BASE, "scope": {"repo_name": "org/a", "branch": "release"}}
    action = _decide(_match(desired, live, desired))
    assert action.kind is ActionKind.UPDATE
    assert [(c.path, c.before, c.after, c.reset) for c in action.changes] == [("scope.branch", "main", "release", False)]


def test_a_live_value_never_declared_nor_applied_is_the_platforms():
    # the real server fills branch "" (model_dump); a UI user set fetch_depth: neither is a change
    live = {**BASE, "scope": {"repo_name": "org/a", "branch": "", "fetch_depth": 5}, "description": "from the UI"}
    desired = {**BASE, "scope": {"repo_name": "org/a"}}
    m = _match(desired, live, desired)
    action = _decide(m)
    assert action.kind is ActionKind.NOOP and not action.changes
    assert m.live.unowned == {"scope.branch": "", "scope.fetch_depth": 5, "description": "from the UI"}


def test_last_applied_but_no_longer_declared_returns_to_the_platform_default():
    live = {**BASE, "scope": {"repo_name": "org/a", "branch": "main"}, "description": "docs"}
    applied = {**BASE, "scope": {"repo_name": "org/a", "branch": "main"}, "description": "docs"}
    desired = {**BASE, "scope": {"repo_name": "org/a"}}
    m = _match(desired, live, applied)
    action = _decide(m)
    assert action.kind is ActionKind.UPDATE and action.reason == "changed: description, scope"
    assert [(c.path, c.before, c.after, c.reset) for c in action.changes] == [
        ("description", "docs", None, True), ("scope.branch", "main", None, True)]
    # in neither the connector nor unowned: a whole-object write drops it, a merge write resets it
    assert m.live.unowned == {}
    text = render_text(Plan("m", "d", {"p": "t"}, [action]))
    assert '- scope.branch = "main" -> (platform default)' in text
    assert '- description  = "docs" -> (platform default)' in text
    # the JSON form says so too, and reads back
    doc = action.to_json()
    assert {"path": "scope.branch", "before": "main", "after": None, "sensitive": False, "forces_replace": False,
            "reset": True} in doc["changes"]
    assert type(action).from_json(doc) == action


def test_a_reset_already_at_the_known_default_or_ignored_or_gone_is_no_change():
    applied = {**BASE, "scope": {"repo_name": "org/a", "branch": "main", "depth": 3}}
    desired = {**BASE, "scope": {"repo_name": "org/a"}}
    live = {**BASE, "scope": {"repo_name": "org/a", "branch": ""}}  # depth already gone, branch at its default
    assert _decide(_match(desired, live, applied), defaults={"scope.branch": ""}).kind is ActionKind.NOOP
    # unknown default: the reset is planned (the platform's value is not known to be its default)
    assert [c.path for c in _decide(_match(desired, live, applied)).changes] == ["scope.branch"]
    live = {**BASE, "scope": {"repo_name": "org/a", "branch": "main"}}
    assert _decide(_match(desired, live, applied, ignore=("scope.branch",))).kind is ActionKind.NOOP


def test_an_entry_from_before_field_ownership_owns_what_is_declared():
    live = {**BASE, "scope": {"repo_name": "org/a", "branch": "main"}}
    desired = {**BASE, "scope": {"repo_name": "org/a"}}
    m = _match(desired, live, None)  # an old state: no last_applied recorded
    assert _decide(m).kind is ActionKind.NOOP
    assert m.live.unowned == {"scope.branch": "main"}
    assert planner.last_applied(m) is desired
    # an adoption owns what is declared: nothing was applied to that object yet
    adopted = _match(desired, live, None, entry=False)
    action = _decide(adopted)
    assert action.kind is ActionKind.NOOP and action.adopt


def test_a_declared_none_means_not_set_and_equals_absent():
    live = {**BASE}
    desired = {**BASE, "schedule": None}
    assert three_way(live, desired, desired) == []
    changes = three_way({**BASE, "schedule": {"cron": "0 3 * * *"}}, desired, desired)
    assert [(c.path, c.after, c.reset) for c in changes] == [("schedule", None, True)]


def test_syncs_are_owned_key_by_key_and_schedules_as_a_whole():
    assert owned_paths({"syncs": {"issues": {"every": 60}}, "schedule": {"cron": "x"}}) == {
        ("syncs", "issues"), ("schedule",)}
    live = {"source": "gh", "syncs": {"issues": {"every": 3600}, "prs": {"every": 60}}}
    changes = three_way(live, {"source": "gh"}, {"source": "gh", "syncs": {"issues": {"every": 3600}}})
    assert [(c.path, c.reset, c.note) for c in changes] == [("syncs.issues", True, "every hour -> platform default")]
    assert platform_owned(live, {"source": "gh"}) == {"syncs.issues": {"every": 3600}, "syncs.prs": {"every": 60}}
    assert platform_owned(live, {"source": "gh"}, {"syncs": {"prs": None}}) == {"syncs.issues": {"every": 3600}}
    # a schedule changing form is one change, not a platform-owned leftover key
    changes = three_way({"schedule": {"cron": "0 3 * * *"}}, {"schedule": {"continuous": True}},
                        {"schedule": {"continuous": True}})
    assert changes and all(c.top == "schedule" and not c.reset for c in changes)
    assert platform_owned({"schedule": {"cron": "0 3 * * *"}}, {"schedule": {"continuous": True}}) == {}


def test_credentials_and_replaces_still_plan():
    from reconciler.fingerprint import fingerprint
    from reconciler.model import Secret

    live = {**BASE, "scope": {"repo_name": "org/a", "branch": ""}}
    desired = {"source": "gitlab", "target": "coll", "scope": {"repo_name": "org/a"}}
    m = _match(desired, live, desired)
    m.entry.fingerprint = fingerprint("docs", {"token": Secret("old")}, KEY)
    m.fingerprint = fingerprint("docs", {"token": Secret("new")}, KEY)
    action = _decide(m)
    assert action.kind is ActionKind.REPLACE
    assert [(c.path, c.forces_replace) for c in action.changes] == [("source", True), ("credentials", False)]


# -- through the CLI, against the Airweave emulator --------------------------------------------------
COLLECTION = "docs-ab123"
API_KEY = "aw-own-key-51f0"
TOKEN = "ghp_ownershipTOKEN0001"


def _manifest(scope: dict, extra: str = "", name: str = "docs-github") -> str:
    lines = ["version: 1", "providers:", "  aw:", "    type: airweave", "    url: ${AW_URL}", "    api_key: ${AW_KEY}",
             "connectors:", f"  {name}:", "    provider: aw", "    source: github", f"    target: {COLLECTION}",
             "    scope:"]
    lines += [f"      {k}: {json.dumps(v)}" for k, v in scope.items()]
    lines += ["    credentials:", "      personal_access_token: ${GH_TOKEN}"]
    return "\n".join(lines) + "\n" + extra


class Project:
    def __init__(self, root: Path, emu) -> None:
        self.root, self.emu = root, emu
        self.env = {"AW_URL": emu.url, "AW_KEY": API_KEY, "GH_TOKEN": TOKEN}
        root.mkdir(parents=True, exist_ok=True)

    def write(self, scope: dict) -> None:
        (self.root / "connectors.yaml").write_text(_manifest(scope))

    def run(self, *args: str):
        result = run_cli(*args, env=self.env)
        assert TOKEN not in result.output and API_KEY not in result.output
        return result

    def plan(self):
        return self.run("plan", str(self.root), "--detailed-exitcode")

    def apply(self):
        r = self.run("apply", str(self.root), "--yes")
        assert r.code == 0, r.output
        return r

    def show(self, name: str = "docs-github") -> dict:
        r = self.run("state", "show", str(self.root), name)
        assert r.code == 0, r.output
        return yaml.safe_load(r.stdout)

    def api(self) -> httpx.Client:
        return httpx.Client(base_url=self.emu.url, headers={"x-api-key": API_KEY}, timeout=10)

    def live_config(self) -> dict:
        with self.api() as c:
            (item,) = c.get("/source-connections", params={"collection": COLLECTION}).json()
            return c.get(f"/source-connections/{item['id']}").json()["config"]

    def set_config(self, config: dict) -> None:
        """Out of band, as a person in the platform's UI would."""
        with self.api() as c:
            (item,) = c.get("/source-connections", params={"collection": COLLECTION}).json()
            c.patch(f"/source-connections/{item['id']}", json={"config": config}).raise_for_status()

    @property
    def state_file(self) -> Path:
        return self.root / ".reconcile" / "state.json"


@pytest.fixture
def project(tmp_path, emulator):
    return Project(tmp_path / "m", emulator("airweave", targets=[COLLECTION], api_key=API_KEY))


def test_removing_a_declared_key_resets_it_then_converges(project):
    project.write({"repo_name": "org/docs", "branch": "main"})
    project.apply()
    assert project.plan().code == 0
    assert project.show()["owned"]["scope.branch"] == "main"

    project.write({"repo_name": "org/docs"})
    r = project.plan()
    assert r.code == 2, r.output
    assert '- scope.branch = "main" -> (platform default)' in r.stdout, r.stdout
    project.apply()
    assert project.live_config().get("branch") in (None, "")  # dropped; a real server fills ""
    r = project.plan()
    assert r.code == 0, r.output
    shown = project.show()
    assert "scope.branch" not in shown["owned"] and shown["owned"]["scope.repo_name"] == "org/docs"


def test_a_value_set_out_of_band_on_an_undeclared_field_is_the_platforms(project):
    project.write({"repo_name": "org/docs"})
    project.apply()
    project.set_config({**project.live_config(), "branch": "from-the-ui"})
    r = project.plan()
    assert r.code == 0, r.output
    assert project.run("drift", str(project.root)).code == 0
    project.apply()  # no change: a state-only refresh records what it saw
    shown = project.show()
    assert shown["owned"] == {"scope.repo_name": "org/docs", "source": "github", "target": COLLECTION}
    # (an emulator that fills the source's other config defaults lists those as the platform's too)
    assert shown["platform_owned"]["scope.branch"] == "from-the-ui"
    assert not set(shown["platform_owned"]) & set(shown["owned"])
    # an owned field changed out of band is drift, and only that one is shown
    project.set_config({"repo_name": "org/other", "branch": "from-the-ui"})
    r = project.run("drift", str(project.root))
    assert r.code == 2, r.output
    assert '~ scope.repo_name = "org/other" -> "org/docs"' in r.stdout and "scope.branch" not in r.stdout


def test_a_state_from_before_field_ownership_migrates(project):
    project.write({"repo_name": "org/docs", "branch": "main"})
    project.apply()
    doc = json.loads(project.state_file.read_text())
    for entry in doc["connectors"].values():
        del entry["last_applied"]  # what the previous version wrote
    project.state_file.write_text(json.dumps(doc))
    shown = project.show()
    assert shown["owned"] is None and "not recorded yet" in shown["ownership"]
    r = project.plan()
    assert r.code == 0, r.output  # the declared keys are owned: nothing to change
    project.apply()
    entry = json.loads(project.state_file.read_text())["connectors"]["docs-github"]
    assert entry["last_applied"]["scope"] == {"repo_name": "org/docs", "branch": "main"}
    # now recorded, so a key removed from the manifest is reset
    project.write({"repo_name": "org/docs"})
    r = project.plan()
    assert r.code == 2 and '- scope.branch = "main" -> (platform default)' in r.stdout, r.output


def test_import_leaves_out_values_at_the_platforms_defaults():
    from reconciler import importer

    live = LiveConnector(id="i1", key="docs", name="docs", source="github", target=COLLECTION,
                         fields={"source": "github", "target": COLLECTION,
                                 "scope": {"repo_name": "org/docs", "branch": "", "depth": 0}})
    item = importer.build("aw", live, "docs", {}, {"branch": "", "depth": 1})
    assert item.body["scope"] == {"repo_name": "org/docs", "depth": 0}
    assert importer.build("aw", live, "docs", {}).body["scope"] == live.fields["scope"]


def test_a_declared_manual_schedule_owns_the_schedule(project):
    (project.root / "connectors.yaml").write_text(_manifest({"repo_name": "org/docs"}).replace(
        "    credentials:", "    schedule:\n      manual: true\n    credentials:", 1))
    project.apply()
    assert project.plan().code == 0
    with project.api() as c:
        (item,) = c.get("/source-connections", params={"collection": COLLECTION}).json()
        c.patch(f"/source-connections/{item['id']}", json={"schedule": {"cron": "0 3 * * *"}}).raise_for_status()
    r = project.plan()
    # a whole schedule in words (issue 15), as the reset of any other field
    assert r.code == 2 and re.search(r'- schedule += at 03:00 -> manual\n', r.stdout), r.output
    project.apply()
    assert project.plan().code == 0


def test_ownership_follows_a_moved_connector_through_a_saved_plan(project, tmp_path):
    project.write({"repo_name": "org/docs", "branch": "main"})
    project.apply()
    (project.root / "connectors.yaml").write_text(_manifest(
        {"repo_name": "org/docs"}, name="docs-renamed", extra="moved:\n  - from: docs-github\n    to: docs-renamed\n"))
    planfile = tmp_path / "plan.json"
    r = project.run("plan", str(project.root), "-o", str(planfile))
    assert r.code == 0, r.output
    assert "docs-github has moved to docs-renamed" in r.stdout, r.stdout
    assert '"main" -> (platform default)' in r.stdout and '"docs-github" -> "docs-renamed"' in r.stdout, r.stdout
    saved = json.loads(planfile.read_text())
    (action,) = saved["actions"]
    assert action["action"] == "update" and {"path": "scope.branch", "before": "main", "after": None,
                                             "sensitive": False, "forces_replace": False, "reset": True} in action["changes"]
    r = project.run("apply", str(planfile))
    assert r.code == 0, r.output
    assert project.live_config().get("branch") in (None, "")
    assert project.plan().code == 0
    assert project.show("docs-renamed")["owned"]["scope.repo_name"] == "org/docs"


def test_import_through_the_cli_leaves_out_known_defaults(project, monkeypatch):
    """In-process; the defaults are the Airweave adapter's table of the real config classes
    (providers/airweave_configs.py: GitHub's branch "" and sync_pull_requests false, both of which
    the emulator's model_dump() returns); the imported manifest then plans nothing."""
    from click.testing import CliRunner

    from reconciler.cli import cli
    (project.root / "connectors.yaml").write_text("\n".join(_manifest({}).split("\nconnectors:")[0].split("\n"))
                                                  + "\nconnectors: {}\n")
    with project.api() as c:
        c.post("/source-connections", json={
            "name": "hand-made", "short_name": "github", "readable_collection_id": COLLECTION,
            "config": {"repo_name": "org/wiki", "branch": ""},
            "authentication": {"credentials": {"personal_access_token": "ghp_handmade_0001"}}}).raise_for_status()
    for k, v in project.env.items():
        monkeypatch.setenv(k, v)
    r = CliRunner().invoke(cli, ["import", str(project.root), "--provider", "aw", "--target", COLLECTION])
    assert r.exit_code == 0, r.output
    doc = yaml.safe_load((project.root / "imported-aw.yaml").read_text())
    assert doc["connectors"]["hand-made"]["scope"] == {"repo_name": "org/wiki"}
    r = CliRunner().invoke(cli, ["plan", str(project.root), "--detailed-exitcode"],
                           env={"IMPORTED_AW_HAND_MADE_PERSONAL_ACCESS_TOKEN": "ghp_handmade_0001"})
    assert r.exit_code == 0, r.output


def test_a_connector_renamed_in_git_keeps_what_its_old_name_owned():
    # a platform matched by natural key: the object is taken over under the new name (no moved: needed)
    obj = LiveConnector(id="id-1", key="ws/m/gmail", name=None, source="gmail", target="ws",
                        fields={"source": "gmail", "target": "ws", "scope": {"scope": "mail.read", "extra": {"a": "1"}}})
    old = StateEntry(name="old-name", provider="p", type="t", id="id-1", key="ws/m/gmail",
                     last_applied={"source": "gmail", "target": "ws", "scope": {"scope": "mail.read", "extra": {"a": "1"}}})
    new = Connector(name="new-name", provider="p", source="gmail", target="ws", scope={"scope": "mail.read"})
    pairing = planner.pair(desired=[new], live=[obj], entries=[old], identity=lambda c: "ws/m/gmail",
                           desired_fields=lambda c: {"source": c.source, "target": c.target, "scope": dict(c.scope)},
                           fingerprint_key=KEY)
    (m,) = pairing.matches
    assert m.renamed_from == "old-name" and m.adopt
    action = _decide(m)
    assert [(c.path, c.reset) for c in action.changes] == [("scope.extra", True)]


def test_nango_syncs_are_owned_one_by_one(emulator, tmp_path):
    """A sync frequency set out of band is the platform's: kept across updates of the syncs the
    manifest owns; a sync override removed from the manifest returns to the integration default."""
    key, token = "nango-own-key-77", "nango-own-token-78"
    emu = emulator("nango", api_key=key, targets=["github-prod"], sync_creation_delay=0.2)
    path = tmp_path / "connectors.yaml"

    def write(syncs: dict[str, str]) -> None:
        lines = ["version: 1", "providers:", "  ng:", "    type: nango", f"    url: {emu.url}", "    api_key: ${KEY}",
                 "connectors:", "  repo-one:", "    provider: ng", "    source: github-prod"]
        if syncs:
            lines += ["    syncs:", *(f"      {s}:\n        every: {e}" for s, e in syncs.items())]
        lines += ["    credentials:", "      type: OAUTH2", "      access_token: ${TOKEN}"]
        path.write_text("\n".join(lines) + "\n")

    def cli(*args: str):
        return run_cli(*args, env={"KEY": key, "TOKEN": token})

    def frequencies() -> dict[str, str]:
        with httpx.Client(base_url=emu.url, headers={"Authorization": f"Bearer {key}"}) as c:
            body = c.get("/sync/status", params={"provider_config_key": "github-prod", "syncs": "*",
                                                 "connection_id": "repo-one"}).json()
        return {s["name"]: s["frequency"] for s in body["syncs"]}

    write({"issues": "2h"})
    assert cli("apply", str(path), "--yes").code == 0
    with httpx.Client(base_url=emu.url, headers={"Authorization": f"Bearer {key}"}) as c:
        c.put("/sync/update-connection-frequency", json={
            "provider_config_key": "github-prod", "connection_id": "repo-one", "sync_name": "pull-requests",
            "frequency": "every 1h"}).raise_for_status()
    ui_value = frequencies()["pull-requests"]
    r = cli("plan", str(path), "--detailed-exitcode")
    assert r.code == 0, r.output
    write({"issues": "3h"})
    r = cli("plan", str(path), "--detailed-exitcode")
    assert r.code == 2 and "syncs.issues" in r.stdout and "pull-requests" not in r.stdout, r.output
    assert cli("apply", str(path), "--yes").code == 0
    assert frequencies()["pull-requests"] == ui_value
    write({})
    r = cli("plan", str(path), "--detailed-exitcode")
    assert r.code == 2 and '- syncs.issues' in r.stdout and "-> platform default" in r.stdout, r.output
    assert cli("apply", str(path), "--yes").code == 0
    assert cli("plan", str(path), "--detailed-exitcode").code == 0
    with httpx.Client(base_url=emu.url, headers={"Authorization": f"Bearer {key}"}) as c:
        functions = c.get("/integrations/github-prod/functions", params={"type": "sync"}).json()
    default = next(f["runs"] for f in functions["data"] if f["name"] == "issues")
    assert frequencies() == {"pull-requests": ui_value, "issues": default}
    assert token not in r.output
