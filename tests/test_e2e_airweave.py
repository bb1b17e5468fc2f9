"""Plan and apply end to end: the CLI as a real process against the Airweave emulator over loopback.

Covers the engine's promises: convergence, field-level updates, replaces, deletes that spare
unmanaged objects, rotated credentials, saved plans bound to what they saw, faults, a killed run,
the state lock, lifecycle rules, the fewest calls, and no secret in any byte the tool wrote.
"""
from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from conftest import EMU_HTTP, run_cli
from e2e_helpers import AIRWEAVE_ALT as ALT
from reconciler.state.file import FileBackend

COLLECTION = "docs-ab123"
API_KEY = "aw-key-4f9c2a7d1e"
TOKEN_A = "ghp_tokenAAAA1111secret"
TOKEN_B = "ghp_tokenBBBB2222rotated"
SECRETS = (API_KEY, TOKEN_A, TOKEN_B)


def manifest(names: list[str] | dict[str, dict], *, source: str = "github", extra: str = "") -> str:
    """A manifest with one github connector per name (``{name: overrides}`` for per-connector tweaks)."""
    items = names if isinstance(names, dict) else {n: {} for n in names}
    out = [
        "version: 1",
        "providers:",
        "  aw:",
        "    type: airweave",
        "    url: ${AW_URL}",
        "    api_key: ${AW_KEY}",
        "connectors:",
    ]
    for name, o in items.items():
        kind = o.get('source', source)
        out += [
            f"  {name}:",
            "    provider: aw",
            f"    source: {kind}",
            f"    target: {o.get('target', COLLECTION)}",
            "    scope:",
        ]
        # each source's real config and auth classes: Freshdesk (the replace target, a token source
        # like GitHub) takes a domain and an api_key; "branch" stands for the in-place field
        if kind == ALT:
            out += [f"      domain: {o.get('branch', 'main')}"]
        else:
            out += [f"      repo_name: company/{name}", f"      branch: {o.get('branch', 'main')}"]
        if o.get("cron", "0 */6 * * *") is not None:
            out += ["    schedule:", f"      cron: \"{o.get('cron', '0 */6 * * *')}\""]
        out += ["    credentials:", f"      {'api_key' if kind == ALT else 'personal_access_token'}: ${{GH_TOKEN}}"]
        if "lifecycle" in o:
            out += ["    lifecycle:"] + [f"      {line}" for line in o["lifecycle"]]
    return "\n".join(out) + "\n" + extra


class Project:
    """A manifest directory, its environment, and every byte the tool wrote for it."""

    def __init__(self, root: Path, emu, token: str = TOKEN_A) -> None:
        self.root = root
        self.emu = emu
        self.env = {"AW_URL": emu.url, "AW_KEY": API_KEY, "GH_TOKEN": token}
        self.outputs: list[str] = []
        root.mkdir(parents=True, exist_ok=True)

    def write(self, text: str) -> None:
        (self.root / "connectors.yaml").write_text(text)

    def run(self, *args: str, **env: str):
        result = run_cli(*args, env={**self.env, **env})
        self.outputs += [result.stdout, result.stderr]
        return result

    def plan(self, *extra: str, **env: str):
        return self.run("plan", str(self.root), "--detailed-exitcode", *extra, **env)

    def apply(self, *extra: str, **env: str):
        return self.run("apply", str(self.root), "--yes", *extra, **env)

    def live(self) -> list[dict]:
        with httpx.Client(base_url=self.emu.url, headers={"x-api-key": API_KEY}) as c:
            return c.get("/source-connections", params={"limit": 1000}).json()

    def state(self) -> dict:
        return {n: e.to_json() for n, e in FileBackend(self.root / ".reconcile" / "state.json").load().entries.items()}

    def assert_no_secret_written(self, extra_files: tuple[Path, ...] = ()) -> None:
        blobs = list(self.outputs)
        for path in [*self.root.rglob("*"), *extra_files]:
            if path.is_file():
                blobs.append(path.read_bytes().decode("utf-8", "replace"))
        for secret in SECRETS:
            forms = {secret, quote(secret, safe=""), base64.b64encode(secret.encode()).decode().rstrip("=")}
            for blob in blobs:
                for form in forms:
                    assert form not in blob, "a secret value leaked into the tool's output or files"


@pytest.fixture
def aw(emulator):
    return emulator("airweave", targets=[COLLECTION], api_key=API_KEY)


@pytest.fixture
def project(tmp_path, aw):
    return Project(tmp_path / "manifests", aw)


def names_live(project: Project) -> list[str]:
    return sorted(item["name"] for item in project.live())


def test_create_then_empty_plan_then_update_replace_delete(project):
    project.write(manifest(["docs-github", "api-github"]))
    r = project.plan()
    assert r.code == 2, r.output
    assert '# aw.docs-github will be created' in r.stdout and "Plan: 2 to add, 0 to change" in r.stdout
    r = project.apply()
    assert r.code == 0, r.output
    assert "Apply complete! Connectors: 2 added" in r.stdout
    assert names_live(project) == ["api-github", "docs-github"]

    r = project.plan()
    assert r.code == 0, r.output
    assert "No changes." in r.stdout

    # scope + schedule edit: an in-place update with field-level diffs and the cron in words
    project.write(manifest({"docs-github": {"branch": "release", "cron": "0 3 * * *"}, "api-github": {}}))
    r = project.plan()
    assert r.code == 2
    assert "# aw.docs-github will be updated in place" in r.stdout
    assert '~ scope.branch  = "main" -> "release"' in r.stdout
    assert '"0 */6 * * *" -> "0 3 * * *"   (every 6 hours -> at 03:00)' in r.stdout
    assert "credentials   = (sensitive)" in r.stdout
    ids_before = {i["name"]: i["id"] for i in project.live()}
    assert project.apply().code == 0
    assert {i["name"]: i["id"] for i in project.live()} == ids_before  # updated in place, same ids
    assert project.plan().code == 0

    # source change: replace, naming the field that forces it
    project.write(manifest({"docs-github": {"branch": "release", "cron": "0 3 * * *", "source": ALT},
                            "api-github": {}}))
    r = project.plan()
    assert r.code == 2
    assert "-/+ connector \"docs-github\"" in r.stdout and "# forces replacement" in r.stdout
    assert "Plan: 0 to add, 0 to change, 1 to replace, 0 to destroy." in r.stdout
    assert project.apply().code == 0
    live = {i["name"]: i for i in project.live()}
    assert live["docs-github"]["short_name"] == ALT and live["docs-github"]["id"] != ids_before["docs-github"]
    assert len(project.live()) == 2
    assert project.plan().code == 0

    # removing a connector deletes it
    project.write(manifest({"docs-github": {"branch": "release", "cron": "0 3 * * *", "source": ALT}}))
    r = project.plan()
    assert "# aw.api-github will be destroyed" in r.stdout and "0 to add, 0 to change, 0 to replace, 1 to destroy" in r.stdout
    assert project.apply().code == 0
    assert names_live(project) == ["docs-github"]
    assert set(project.state()) == {"docs-github"}
    assert project.plan().code == 0
    project.assert_no_secret_written()


def test_unmanaged_connector_is_reported_and_never_touched(project):
    with httpx.Client(base_url=project.emu.url, headers={"x-api-key": API_KEY}) as c:
        made = c.post("/source-connections", json={
            "name": "Hand made one", "short_name": "notion", "readable_collection_id": COLLECTION,
            "authentication": {"access_token": "x" * 12}}).json()
        assert "id" in made, made
    project.write(manifest(["docs-github"]))
    assert project.apply().code == 0
    r = project.plan()
    assert r.code == 0, r.output
    assert '! 1 unmanaged connector on aw (not in any manifest, not owned): "Hand made one"' in r.stdout
    project.write(manifest([]).replace("connectors:\n", "connectors: {}\n"))
    r = project.apply()
    assert r.code == 0, r.output
    assert [i["id"] for i in project.live()] == [made["id"]]


def test_rotated_credential_plans_an_update(project):
    project.write(manifest(["docs-github"]))
    assert project.apply().code == 0
    r = project.plan(GH_TOKEN=TOKEN_B)
    assert r.code == 2, r.output
    assert "~ credentials = (sensitive) -> (sensitive)   (credentials rotated)" in r.stdout
    assert project.apply(GH_TOKEN=TOKEN_B).code == 0
    assert project.plan(GH_TOKEN=TOKEN_B).code == 0
    assert project.plan().code == 2  # and back: the old secret differs from the recorded one
    project.assert_no_secret_written()


def test_saved_plan_applies_and_refuses_when_anything_moved(project, tmp_path):
    project.write(manifest(["docs-github"]))
    planfile = tmp_path / "plan.json"
    r = project.run("plan", str(project.root), "-o", str(planfile))
    assert r.code == 0 and planfile.exists()
    doc = json.loads(planfile.read_text())
    assert doc["format_version"] == 1 and doc["summary"]["add"] == 1
    assert project.run("apply", str(planfile)).code == 0
    assert names_live(project) == ["docs-github"]

    # manifests moved since the plan
    project.write(manifest({"docs-github": {"branch": "dev"}}))
    assert project.run("plan", str(project.root), "-o", str(planfile)).code == 0
    project.write(manifest({"docs-github": {"branch": "other"}}))
    r = project.run("apply", str(planfile))
    assert r.code == 1 and "manifests (or the variables they read) changed" in r.stderr

    # live state moved since the plan
    project.write(manifest({"docs-github": {"branch": "dev"}}))
    assert project.run("plan", str(project.root), "-o", str(planfile)).code == 0
    conn_id = project.live()[0]["id"]
    with httpx.Client(base_url=project.emu.url, headers={"x-api-key": API_KEY}) as c:
        assert c.patch(f"/source-connections/{conn_id}", json={"description": "edited by hand"}).status_code == 200
    r = project.run("apply", str(planfile))
    assert r.code == 1 and "live state moved" in r.stderr and "aw.docs-github" in r.stderr
    project.assert_no_secret_written((planfile,))


def test_plan_reads_details_only_for_what_moved(project):
    # without schedules: modified_at does not move on a schedule change (real server 32cfea0c), so
    # connectors that declare one are read every plan (checked at the end)
    project.write(manifest({f"conn-{i:03d}": {"cron": None} for i in range(30)}))
    assert project.apply().code == 0
    requests.clear_stats(project.emu)
    assert project.plan().code == 0
    stats = requests.stats(project.emu)
    gets = sum(v for k, v in stats.items() if k.startswith("GET /source-connections/"))
    lists = stats.get("GET /source-connections", 0)
    assert gets == 0 and lists == 1, stats  # one list page, no detail GET: nothing moved
    conn_id = project.live()[0]["id"]
    with httpx.Client(base_url=project.emu.url, headers={"x-api-key": API_KEY}) as c:
        c.patch(f"/source-connections/{conn_id}", json={"config": {"repo_name": "x/y"}})
    requests.clear_stats(project.emu)
    r = project.plan()
    assert r.code == 2 and '~ scope.repo_name = "x/y" -> ' in r.stdout
    stats = requests.stats(project.emu)
    assert sum(v for k, v in stats.items() if k.startswith("GET /source-connections/")) == 1, stats
    scheduled = {f"conn-{i:03d}": {"cron": None} if i >= 3 else {} for i in range(30)}
    project.write(manifest(scheduled))
    assert project.apply().code == 0
    requests.clear_stats(project.emu)
    assert project.plan().code == 0
    stats = requests.stats(project.emu)
    assert sum(v for k, v in stats.items() if k.startswith("GET /source-connections/")) == 3, stats


class requests:  # noqa: N801 - a namespace for the emulator's request counters
    @staticmethod
    def stats(emu) -> dict[str, int]:
        return EMU_HTTP.get(f"{emu.url}/_emulator/stats").json()["requests"]

    @staticmethod
    def clear_stats(emu) -> None:
        EMU_HTTP.delete(f"{emu.url}/_emulator/stats")


def test_faults_converge_without_duplicates(tmp_path, emulator):
    emu = emulator("airweave", targets=[COLLECTION], api_key=API_KEY, fail_rate=0.3, throttle_rate=0.3,
                   drop_rate=0.2, retry_after=0.01, seed=7)
    project = Project(tmp_path / "m", emu)
    names = [f"conn-{i:03d}" for i in range(25)]
    # no schedules: a scheduled connector's detail is read on every plan (modified_at misses schedule
    # changes), and 25 extra reads at these fault rates would make "3 applies suffice" a coin toss
    project.write(manifest({n: {"cron": None} for n in names}))
    for _ in range(5):  # each run ends with what failed named; at these rates a run can fail a call 6 times
        r = project.apply("--parallelism", "6")
        if r.code == 0:
            break
    assert r.code == 0, r.output
    emu.config.fail_rate = emu.config.throttle_rate = emu.config.drop_rate = 0.0
    assert names_live(project) == names  # no duplicate, none lost
    assert project.plan().code == 0
    faults = EMU_HTTP.get(f"{emu.url}/_emulator/stats").json()["faults"]
    assert faults.get("drop", 0) > 0 and faults.get("429", 0) > 0
    project.assert_no_secret_written()


def test_killed_apply_reruns_to_convergence_without_duplicates(tmp_path, emulator):
    emu = emulator("airweave", targets=[COLLECTION], api_key=API_KEY, latency_ms=40)
    project = Project(tmp_path / "m", emu)
    names = [f"conn-{i:03d}" for i in range(40)]
    project.write(manifest(names))
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECONCILE_")}
    env.update(project.env, NO_COLOR="1")
    proc = subprocess.Popen([sys.executable, "-m", "reconciler", "apply", str(project.root), "--yes",
                             "--parallelism", "4"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 30
    while time.time() < deadline:
        created = requests.stats(emu).get("POST /source-connections", 0)
        if created >= 10:
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    out, err = proc.communicate()
    project.outputs += [out.decode(), err.decode()]
    assert 0 < len(project.live()) < len(names)
    r = project.apply()
    assert r.code == 0, r.output
    assert names_live(project) == names
    assert project.plan().code == 0
    project.assert_no_secret_written()


def test_second_concurrent_apply_is_refused_by_the_lock(project):
    project.write(manifest(["docs-github"]))
    backend = FileBackend(project.root / ".reconcile" / "state.json")
    with backend.lock(timeout=0, holder="pid 4242 (ci@runner-7, since 2026-01-01T00:00:00+00:00)"):
        r = project.apply()
    assert r.code == 1
    assert "locked by pid 4242 (ci@runner-7" in r.stderr
    assert project.live() == []
    assert project.apply().code == 0


def test_non_interactive_apply_needs_yes_and_max_deletes_aborts_before_any_call(project):
    project.write(manifest(["aaaa-1", "bbbb-2", "cccc-3"]))
    r = project.run("apply", str(project.root))
    assert r.code == 1 and "needs --yes" in r.stderr
    assert project.apply().code == 0
    project.write(manifest(["aaaa-1"]))
    requests.clear_stats(project.emu)
    r = project.apply("--max-deletes", "1")
    assert r.code == 1 and "more than --max-deletes 1" in r.stderr
    assert not any(k.startswith("DELETE") for k in requests.stats(project.emu))
    assert len(project.live()) == 3


def test_prevent_destroy_and_ignore_changes(project):
    project.write(manifest({"keep-me": {"lifecycle": ["prevent_destroy: true", "ignore_changes: [scope.branch]"]}}))
    assert project.apply().code == 0
    project.write(manifest({"keep-me": {"branch": "other",
                                        "lifecycle": ["prevent_destroy: true", "ignore_changes: [scope.branch]"]}}))
    assert project.plan().code == 0  # drift on an ignored path is not corrected
    project.write(manifest({"keep-me": {"source": ALT, "lifecycle": ["prevent_destroy: true"]}}))
    r = project.plan()
    assert r.code == 1 and "prevent_destroy forbids this plan" in r.stderr and "must be replaced" in r.stderr
    project.write(manifest({"other-one": {}}))  # removed from git: the state still protects it
    r = project.plan()
    assert r.code == 1 and "aw.keep-me would be deleted" in r.stderr
    assert names_live(project) == ["keep-me"]


def test_json_plan_matches_its_schema(project):
    import jsonschema

    project.write(manifest(["docs-github"]))
    r = project.run("plan", str(project.root), "--format", "json")
    assert r.code == 0
    doc = json.loads(r.stdout)
    schema = json.loads((Path(__file__).resolve().parent.parent / "schemas" / "plan.schema.json").read_text())
    jsonschema.Draft202012Validator(schema).validate(doc)
    assert doc["actions"][0]["action"] == "create"
    creds = [c for c in doc["actions"][0]["changes"] if c["path"] == "credentials"]
    assert creds == [{"path": "credentials", "before": None, "after": "(sensitive)", "sensitive": True,
                      "forces_replace": False}]
