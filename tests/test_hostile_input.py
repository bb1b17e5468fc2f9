"""Hostile and malformed manifests (tests/hostile/, written by make_corpus.py, plus a few made here
at run time: a huge file, very deep nesting): `reconcile validate` and `reconcile plan` each give a
clear error naming FILE:LINE, exit 1, no traceback, and make ZERO network calls (every manifest's
provider url points at a live emulator whose request counter must stay at 0).

Running 2 × 75 CLI processes would cost over a minute, so by default one driver process calls the
CLI's ``main()`` for every case (the same code path after interpreter start, exceptions and exit
codes included) and a representative handful run as real processes; ``RECONCILE_FULL_MATRIX=1``
runs every case as a real process too. A hypothesis fuzz feeds the loader random bytes and
YAML-like text: it must return a Manifest or raise ManifestError, nothing else.
"""
from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import run_cli
from reconciler.errors import ManifestError
from reconciler.manifest import load

HOSTILE = Path(__file__).parent / "hostile"
FULL = os.environ.get("RECONCILE_FULL_MATRIX") == "1"
KEY = "hostile-api-key-00000"
BASE_ENV = {"P_KEY": KEY, "TOK": "hostile-token-11111"}
_HEADER = re.compile(rb"^# (expect|env|never): (.*)$")


def _headers(path: Path) -> tuple[list[str], dict[str, str]]:
    expects, env = [], {}
    for raw in path.read_bytes().splitlines()[:8]:
        m = _HEADER.match(raw)
        if m and m.group(1) == b"expect":
            expects.append(m.group(2).decode())
        elif m and m.group(1) == b"env":
            name, value = m.group(2).decode().split("=", 1)
            env[name] = ast.literal_eval(value)
    return expects, env


def _never(path: Path) -> list[str]:
    """``# never: TEXT`` headers (TEXT with Python escapes): what no output may contain."""
    out = []
    for raw in path.read_bytes().splitlines()[:8]:
        m = _HEADER.match(raw)
        if m and m.group(1) == b"never":
            out.append(ast.literal_eval('"' + m.group(2).decode() + '"'))
    return out


def _generated(tmp: Path) -> list[Path]:
    """Cases too big to keep in git."""
    head = (HOSTILE / "syntax-unclosed-flow.yaml").read_text().split("connectors:\n")[0] + "connectors:\n"
    huge = tmp / "huge-file.yaml"  # ~6 MB: 30k connectors, the last one broken
    with huge.open("w") as fh:
        fh.write(head)
        for i in range(30000):
            fh.write(f"  c-{i}:\n    provider: aw\n    source: github\n    target: coll-one\n"
                     f"    credentials: {{personal_access_token: ${{TOK}}}}\n")
        fh.write("  broken: [\n")
    deep = tmp / "deep-nesting-100k.yaml"
    deep.write_text(head + "  x:\n    scope: " + "[" * 100000 + "]" * 100000 + "\n")
    long_line = tmp / "one-line-2mb.yaml"
    long_line.write_text("version: 1\nconnectors: {" + "a: 1, " * 100000 + "\n")
    dashes = tmp / "deep-block-sequence-60k.yaml"  # one line of "- - - ...": libyaml recursed to a SIGSEGV
    dashes.write_text(head + "  x:\n    scope:\n" + "- " * 60000 + "x\n")
    long_key = tmp / "one-key-1mb.yaml"  # a syntax error on a 1 MB line: the hint's regex must stay linear
    long_key.write_text(head + "  " + "k" * 1_000_000 + " ${TOK}\n")
    return [huge, deep, long_line, dashes, long_key]


CASES = sorted(HOSTILE.glob("*.yaml"))
VALID = sorted((HOSTILE / "valid").glob("*.yaml"))

_DRIVER = r"""
import contextlib, io, json, os, sys, traceback
from reconciler import cli, redact
cases = json.loads(sys.stdin.read())
results = []
for case in cases:
    saved = dict(os.environ)
    os.environ.update(case["env"])
    out, err = io.StringIO(), io.StringIO()
    code, crash = None, None
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            cli.main(case["argv"] if "argv" in case else [case["command"], case["file"]])
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        crash = traceback.format_exc()
    finally:
        os.environ.clear()
        os.environ.update(saved)
        redact.clear()
    results.append({"code": code, "output": out.getvalue() + err.getvalue(), "crash": crash})
print(json.dumps(results))
"""


def _check(path: Path, command: str, code: int | None, output: str, crash: str | None = None) -> None:
    what = f"{command} {path.name}"
    assert crash is None, f"{what}: traceback\n{crash}"
    assert "Traceback" not in output, f"{what}:\n{output}"
    assert code == 1, f"{what}: exit {code}\n{output}"
    assert re.search(re.escape(path.name) + r":\d+", output), f"{what}: no FILE:LINE in\n{output}"
    expects, _ = _headers(path)
    for text in expects:
        assert text in output, f"{what}: expected {text!r} in\n{output}"
    assert KEY not in output and BASE_ENV["TOK"] not in output


@pytest.fixture
def target(emulator):
    emu = emulator("airweave", targets=["coll-one"], api_key=KEY)
    yield emu
    assert emu.stats["requests"].get("total", 0) == 0, f"a bad manifest reached the network: {emu.stats}"


def test_corpus_is_big_enough():
    assert len(CASES) >= 50


def test_every_case_fails_clearly_before_any_call(tmp_path, target):
    files = CASES + _generated(tmp_path)
    cases = []
    for path in files:
        _, env = _headers(path)
        for command in ("validate", "plan"):
            cases.append({"file": str(path), "command": command, "env": {**BASE_ENV, "P_URL": target.url, **env}})
    proc = subprocess.run([sys.executable, "-c", _DRIVER], input=json.dumps(cases), capture_output=True, text=True,
                          timeout=240, env={**os.environ, "NO_COLOR": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads(proc.stdout.splitlines()[-1])
    failures = []
    for case, result in zip(cases, results):
        try:
            _check(Path(case["file"]), case["command"], result["code"], result["output"], result["crash"])
        except AssertionError as exc:
            failures.append(str(exc)[:1500])
    assert not failures, f"{len(failures)} of {len(cases)} runs misbehaved:\n\n" + "\n\n".join(failures)
    _figures(len(files), len(cases))


def _figures(inputs: int, runs: int) -> None:
    path = os.environ.get("ROBUSTNESS_FIGURES")
    if path:
        with open(path, "a") as fh:
            fh.write(json.dumps({"suite": "hostile", "inputs": inputs, "runs": runs}) + "\n")


REAL_PROCESS = ["alias-bomb", "tag-python-object", "unicode-rtl-override", "nul-byte", "state-path-traversal",
                "env-value-with-newline", "airstore-target-dotdot", "empty-secret", "url-port-range", "tag-on-key"]


@pytest.mark.parametrize("path", [p for p in CASES if FULL or p.stem in REAL_PROCESS], ids=lambda p: p.stem)
def test_case_as_a_real_process(path, target):
    _, env = _headers(path)
    for command in ("validate", "plan"):
        r = run_cli(command, str(path), env={**BASE_ENV, "P_URL": target.url, **env})
        _check(path, command, r.code, r.output)


# -- fuzzing the loader --------------------------------------------------------------------------
_YAMLISH = st.lists(st.sampled_from([
    "version: 1\n", "providers:\n", "  aw:\n", "    type: airweave\n", "    url: ${P_URL}\n", "connectors:\n",
    "  c:\n", "    provider: aw\n", "    source: github\n", "    target: coll-one\n", "    scope: {a: [1, 2]}\n",
    "&a ", "*a ", "<<: *a\n", "!!python/object:x ", "? ", ": ", "- ", "[", "]", "{", "}", "'", '"', "\t", "\r\n",
    "\x00", "\ufeff", "\u202e", "${", "${X:-", "}", "#", "---\n", "...\n", "!!binary ", "0x1F", ".inf", "~",
]), max_size=40).map("".join)


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.one_of(st.binary(max_size=400), _YAMLISH.map(str.encode), st.text(max_size=300).map(str.encode)))
def test_loader_fuzz_never_crashes(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("fuzz") / "m.yaml"
    path.write_bytes(data)
    try:
        load(path, env={"P_URL": "http://127.0.0.1:9", "X": "y"})
    except ManifestError as exc:
        for d in exc.diagnostics:
            assert d.message
            if d.location is not None:
                assert d.location.line >= 1


# -- issue 13: every hostile manifest through validate, plan and apply -----------------------------
OTHER_SECRET = "AKIA-hostile-other-secret-9999"


def _driver(cases: list[dict]) -> list[dict]:
    proc = subprocess.run([sys.executable, "-c", _DRIVER], input=json.dumps(cases), capture_output=True, text=True,
                          timeout=300, env={**os.environ, "NO_COLOR": "1", "CI": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.splitlines()[-1])


def _isolated(src: Path, tmp: Path) -> Path:
    """A copy of one case in a directory of its own (its .reconcile/ state stays out of the repo)."""
    dest = tmp / src.stem / src.name
    dest.parent.mkdir(parents=True)
    dest.write_bytes(src.read_bytes())
    return dest


def test_every_hostile_manifest_through_validate_plan_and_apply(tmp_path, emulator, target):
    """Invalid cases fail each command before any call; valid hostile ones plan and apply, showing
    their text escaped or masked. No run prints a traceback, and no secret (nor a variable read into a
    plain field) ever appears in any output."""
    live = emulator("airweave", targets=["coll-one"], api_key=KEY)
    runs = []
    for src in CASES + VALID:
        path = _isolated(src, tmp_path)
        _, env = _headers(src)
        url = live.url if src in VALID else target.url
        # validate and plan of the invalid cases run in test_every_case_fails_clearly_before_any_call
        commands = ([["validate"], ["plan"], ["plan", "--format", "markdown"], ["apply", "--yes"],
                     ["plan", "--format", "json"]] if src in VALID else [["plan", "--format", "markdown"], ["apply", "--yes"]])
        for argv in (c + [str(path)] for c in commands):
            runs.append({"argv": argv, "src": str(src), "env": {**BASE_ENV, "P_URL": url, **env}})
    results = _driver(runs)
    failures = []
    for run, result in zip(runs, results):
        src, what = Path(run["src"]), " ".join(run["argv"][:-1]) + " " + Path(run["src"]).name
        out = result["output"]
        try:
            assert result["crash"] is None and "Traceback" not in out, f"traceback\n{result['crash'] or out}"
            for secret in (KEY, BASE_ENV["TOK"], OTHER_SECRET):
                assert secret not in out, f"{secret!r} leaked:\n{out}"
            if src in VALID:
                assert result["code"] == 0, f"exit {result['code']}\n{out}"
                for text in _never(src):
                    assert text not in out, f"{text!r} printed raw:\n{out}"
                if run["argv"][0] == "plan" and len(run["argv"]) == 2:
                    for text in _headers(src)[0]:
                        assert text in out, f"expected {text!r} in\n{out}"
            else:
                assert result["code"] == 1 and re.search(re.escape(src.name) + r":\d+", out), f"exit {result['code']}\n{out}"
        except AssertionError as exc:
            failures.append(f"{what}: {str(exc)[:1500]}")
    assert not failures, f"{len(failures)} of {len(runs)} runs misbehaved:\n\n" + "\n\n".join(failures)
    assert live.stats["requests"].get("create", 0) >= len(VALID) or live.stats["requests"]["total"] > len(VALID)


# -- one CLI test per bullet ------------------------------------------------------------------------
MANIFEST = """version: 1
providers:
  aw:
    type: airweave
    url: {url}
    api_key: ${{P_KEY}}
{extra}connectors:
  repo-docs:
    provider: aw
    source: github
    target: coll-one
    description: {description}
    scope:
      repo_name: org/x
      branch: {branch}
    credentials:
      personal_access_token: ${{TOK}}
"""


def _manifest(tmp: Path, *, url: str, description: str = "plain", branch: str = "main", extra: str = "") -> Path:
    tmp.mkdir(parents=True, exist_ok=True)
    path = tmp / "connectors.yaml"
    path.write_text(MANIFEST.format(url=url, description=description, branch=branch, extra=extra))
    return path


def _outbound_ip() -> str | None:
    """An address of this machine that is not loopback (the source address of the default route)."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))  # UDP: nothing is sent
            ip = s.getsockname()[0]
        except OSError:
            return None
    return None if ip.startswith("127.") or ip == "0.0.0.0" else ip


def _insecure(path: Path) -> Path:
    path.write_text(path.read_text().replace("    api_key:", "    allow_insecure_http: true\n    api_key:"))
    return path


@pytest.fixture
def remote_emulator(emulator):
    """An Airweave emulator on a non-loopback address of this machine (the host rule exempts loopback)."""
    ip = _outbound_ip()
    if ip is None:
        pytest.skip("no non-loopback address to serve an emulator on")
    return emulator("airweave", targets=["coll-one"], api_key=KEY, host=ip), ip


def test_the_api_key_goes_only_to_hosts_the_ci_allows(tmp_path, remote_emulator):
    """A PR that points `url:` at its own server gets no key: refused before any call, naming the
    url's FILE:LINE and how the CI (not the manifest) allows a host; RECONCILE_ALLOWED_HOSTS does
    (for plain http, with an entry written http://HOST)."""
    emu, ip = remote_emulator
    path = _insecure(_manifest(tmp_path, url=emu.url, extra=""))
    for command in (["plan"], ["apply", "--yes"], ["status"]):
        r = run_cli(*command, str(path), env=BASE_ENV)
        assert r.code == 1 and "Traceback" not in r.output, r.output
        assert f"{path}:5:10" in r.stderr and f"refusing to send credentials to '{ip}'" in r.stderr, r.output
        assert f"RECONCILE_ALLOWED_HOSTS=http://{ip}" in r.stderr and "api.airweave.ai" in r.stderr
        assert f"--allow-host http://{ip}" in r.stderr
    assert emu.stats["requests"].get("total", 0) == 0
    r = run_cli("plan", str(path), env={**BASE_ENV, "RECONCILE_ALLOWED_HOSTS": f"other.example, http://{ip}"})
    assert r.code == 0, r.output
    assert emu.stats["requests"]["total"] > 0
    r = run_cli("--allow-host", f"http://{ip}", "plan", str(path), env=BASE_ENV)
    assert r.code == 0, r.output


def test_a_bare_allowed_host_takes_no_plain_http_whatever_the_manifest_says(tmp_path, remote_emulator):
    """The CI listed a host meaning https; a pull request switched its `url:` to http:// and set
    allow_insecure_http: true (both manifest settings). The key would have crossed the network in
    clear text: refused before any call, saying what the CI (not the manifest) writes to allow it."""
    emu, ip = remote_emulator
    path = _insecure(_manifest(tmp_path, url=emu.url))
    for args, env in ((["plan"], {"RECONCILE_ALLOWED_HOSTS": ip}), (["apply", "--yes"], {"RECONCILE_ALLOWED_HOSTS": ip}),
                      (["--allow-host", ip, "plan"], {}), (["--allow-host", f"https://{ip}", "status"], {})):
        r = run_cli(*args, str(path), env={**BASE_ENV, **env})
        assert r.code == 1 and "Traceback" not in r.output, r.output
        assert f"{path}:5:10: provider 'aw' (airweave): refusing plain http:// to {ip}: the CI allows it for " \
               "https only, and a manifest's allow_insecure_http cannot change that" in r.stderr, r.stderr
        assert f"RECONCILE_ALLOWED_HOSTS=http://{ip}" in r.stderr and "from the CI's environment, not from a manifest" \
            in r.stderr
        assert KEY not in r.output
    assert emu.stats["requests"].get("total", 0) == 0


def test_an_http_entry_allows_plain_http_only_with_the_manifests_consent_too(tmp_path, remote_emulator):
    emu, ip = remote_emulator
    plain = _manifest(tmp_path / "plain", url=emu.url)  # no allow_insecure_http
    r = run_cli("plan", str(plain), env={**BASE_ENV, "RECONCILE_ALLOWED_HOSTS": f"http://{ip}"})
    assert r.code == 1 and "Traceback" not in r.output, r.output
    assert f"{plain}:5:10: provider 'aw': plain http:// to {ip} would send the api key unencrypted; use https://, " \
           "or set allow_insecure_http: true" in r.stderr, r.stderr
    assert emu.stats["requests"].get("total", 0) == 0
    both = _insecure(_manifest(tmp_path / "both", url=emu.url))
    for args, env in ((["plan"], {"RECONCILE_ALLOWED_HOSTS": f"http://{ip}/"}), (["--allow-host", f"HTTP://{ip}", "plan"], {})):
        r = run_cli(*args, str(both), env={**BASE_ENV, **env})
        assert r.code == 0, r.output
        assert "Plan: 1 to add" in r.stdout, r.stdout
    assert emu.stats["requests"]["total"] > 0


def test_plain_http_to_loopback_needs_no_entry(tmp_path, emulator):
    emu = emulator("airweave", targets=["coll-one"], api_key=KEY)
    for path in (_manifest(tmp_path / "plain", url=emu.url), _insecure(_manifest(tmp_path / "both", url=emu.url))):
        r = run_cli("plan", str(path), env=BASE_ENV)
        assert r.code == 0 and "Plan: 1 to add" in r.stdout, r.output
    assert emu.stats["requests"]["total"] > 0


def test_the_refusal_never_echoes_a_ci_value(tmp_path, remote_emulator):
    """The url's host read from a CI variable is shown masked in the refusal (what to write names
    the variable, not its value), and a malformed allowed-host entry is named by position."""
    emu, ip = remote_emulator
    port = emu.url.rsplit(":", 1)[1]
    path = _insecure(_manifest(tmp_path, url=f"http://${{CORP_HOST}}:{port}"))
    r = run_cli("plan", str(path), env={**BASE_ENV, "CORP_HOST": ip, "RECONCILE_ALLOWED_HOSTS": ip})
    assert r.code == 1 and "Traceback" not in r.output, r.output
    assert "refusing plain http:// to (from $CORP_HOST)" in r.stderr, r.stderr
    assert "RECONCILE_ALLOWED_HOSTS=http://(from $CORP_HOST)" in r.stderr and ip not in r.output
    path = _insecure(_manifest(tmp_path / "port", url=emu.url))
    hosts = f"ok.example,http://{ip}:{port}"  # a port: not an entry (an entry allows a host, any port)
    r = run_cli("plan", str(path), env={**BASE_ENV, "RECONCILE_ALLOWED_HOSTS": hosts})
    assert r.code == 1 and "Traceback" not in r.output, r.output
    assert "RECONCILE_ALLOWED_HOSTS entry 2 is not an allowed-host entry; write HOST, *.domain or an IP address " \
           "(https only), or http://HOST" in r.stderr, r.stderr
    assert f"{ip}:{port}" not in r.output and "ok.example" not in r.output
    assert emu.stats["requests"].get("total", 0) == 0


def test_allowed_host_entries():
    from reconciler.errors import ReconcileError
    from reconciler.hosts import AllowedHost, check_allowed_host, extra_allowed_hosts

    env = {"RECONCILE_ALLOWED_HOSTS": "a.example, HTTP://*.Corp.Example/ ,https://b.example,[fd00::1],http://[fd00::2],,"}
    assert extra_allowed_hosts(env) == [AllowedHost("a.example"), AllowedHost("*.corp.example", http=True),
                                        AllowedHost("b.example"), AllowedHost("fd00::1"), AllowedHost("fd00::2", http=True)]
    for bad in ("a.example:8443", "ftp://a.example", "http://a.example/api", "http://", "user@a.example", "[fd00::1]:80"):
        with pytest.raises(ReconcileError, match="RECONCILE_ALLOWED_HOSTS entry 1 is not an allowed-host entry"):
            extra_allowed_hosts({"RECONCILE_ALLOWED_HOSTS": bad})
    official = ["https://api.airweave.ai"]

    def ok(url: str) -> bool:
        try:
            check_allowed_host(url, official_urls=official, what="p", env=env)
        except ReconcileError:
            return False
        return True

    assert ok("https://a.example") and not ok("http://a.example")
    assert ok("http://x.corp.example:8080") and ok("https://x.corp.example") and not ok("http://corp.example")
    assert ok("https://[fd00::1]") and not ok("http://[fd00::1]") and ok("http://[fd00::2]:81")
    assert ok("http://127.0.0.1:9") and ok("http://localhost") and not ok("http://api.airweave.ai")
    assert not ok("https://c.example")


def test_allowed_hosts_rule():
    from reconciler.hosts import host_allowed

    official = ["api.airweave.ai"]
    assert host_allowed("API.airweave.ai.", official, [])
    assert host_allowed("127.0.0.1", official, []) and host_allowed("::1", official, []) and host_allowed("localhost", official, [])
    assert not host_allowed("api.airweave.ai.evil.example", official, [])
    assert not host_allowed("evil.example", official, [])
    assert host_allowed("a.corp.example", official, ["*.corp.example"])
    assert not host_allowed("corp.example", official, ["*.corp.example"])
    assert not host_allowed("xcorp.example", official, ["*.corp.example"])


def test_sandbox_is_unaffected_by_the_host_rule(tmp_path):
    path = _manifest(tmp_path, url="https://evil.example.invalid")
    r = run_cli("plan", str(path), "--sandbox", env={})
    assert r.code == 0, r.output


def test_a_variable_read_into_a_plain_field_is_masked_unless_public(tmp_path, emulator):
    emu = emulator("airweave", targets=["coll-one"], api_key=KEY)
    path = _manifest(tmp_path, url=emu.url, description='"key: ${OTHER_SECRET}"')
    env = {**BASE_ENV, "OTHER_SECRET": OTHER_SECRET}
    for fmt in ("text", "markdown", "json"):
        r = run_cli("plan", "--format", fmt, str(path), env=env)
        assert r.code == 0 and OTHER_SECRET not in r.output, r.output
        assert "key: (from $OTHER_SECRET)" in r.stdout, r.stdout
    saved = tmp_path / "plan.json"
    r = run_cli("plan", "-o", str(saved), str(path), env=env)
    assert r.code == 0 and OTHER_SECRET not in saved.read_text()
    r = run_cli("apply", str(saved), env=env)  # the masked saved plan still applies: nothing moved since
    assert r.code == 0 and OTHER_SECRET not in r.output, r.output
    path.write_text(path.read_text().replace("key: ${OTHER_SECRET}", "${OTHER_SECRET}"))
    r = run_cli("plan", str(path), env={**env, "RECONCILE_PUBLIC_VARS": "OTHER_*"})
    assert r.code == 0 and f'"key: {OTHER_SECRET}" -> "{OTHER_SECRET}"' in r.stdout, r.stdout


def test_a_platform_error_quoting_a_masked_value_back_does_not_print_it(tmp_path, emulator):
    emu = emulator("airweave", targets=["coll-one"], api_key=KEY, echo_rate=1.0)  # 422 quoting the body
    path = _manifest(tmp_path, url=emu.url, description='"${OTHER_SECRET}"')
    r = run_cli("apply", "--yes", str(path), env={**BASE_ENV, "OTHER_SECRET": OTHER_SECRET})
    assert r.code == 1 and "Traceback" not in r.output, r.output
    assert "(from $OTHER_SECRET)" in r.output and OTHER_SECRET not in r.output, r.output


def _fenced_blocks(markdown: str) -> list[str]:
    """Each ```diff block's content, parsed as CommonMark does: closed by a run at least as long."""
    blocks, fence, current = [], None, []
    for line in markdown.split("\n"):
        if fence is None:
            m = re.fullmatch(r"(`{3,})diff", line)
            if m:
                fence, current = m.group(1), []
        elif re.fullmatch(r"`{%d,}" % len(fence), line):
            blocks.append("\n".join(current))
            fence = None
        else:
            current.append(line)
    assert fence is None, "a code block is left open"
    return blocks


def test_a_fence_or_details_tag_in_a_value_stays_inside_the_pr_comments_code_block(tmp_path, emulator):
    emu = emulator("airweave", targets=["coll-one"], api_key=KEY)
    evil = "main\\n````````\\n</details>\\n<img src=x onerror=alert(1)>\\n```"
    path = _manifest(tmp_path, url=emu.url, branch=f'"{evil}"', description='"a ``` b"')
    r = run_cli("plan", "--format", "markdown", str(path), env=BASE_ENV)
    assert r.code == 0, r.output
    blocks = _fenced_blocks(r.stdout)
    assert len(blocks) == 1 and "</details>" in blocks[0] and "onerror" in blocks[0], r.stdout
    outside = re.sub(r"^(`{3,})diff\n.*?^\1$", "", r.stdout, flags=re.S | re.M)
    assert outside.count("</details>") == 1 and "<img" not in outside, outside


def test_control_characters_are_escaped_in_text_markdown_errors_and_state(tmp_path, emulator):
    emu = emulator("airweave", targets=["coll-one"], api_key=KEY)
    path = _manifest(tmp_path, url=emu.url, description='"ok\\e[2J\\e]0;title\\a\\rX\\0\\u202eevil\\u2066"')
    raw = ["\x1b", "\r", "\x00", "\x07", "\u202e", "\u2066"]
    outputs = [run_cli("plan", str(path), env=BASE_ENV), run_cli("plan", "--format", "markdown", str(path), env=BASE_ENV),
               run_cli("apply", "--yes", str(path), env=BASE_ENV), run_cli("state", "show", str(path), "repo-docs"),
               run_cli("state", "list", str(path)), run_cli("status", str(path), env=BASE_ENV)]
    for r in outputs:
        assert "Traceback" not in r.output, r.output
        assert not [c for c in raw if c in r.output], repr(r.output)
    assert "\\u001b[2J" in outputs[0].stdout and "\\u202eevil" in outputs[0].stdout, outputs[0].stdout
    # errors: a manifest error quoting such a value
    bad = tmp_path / "bad"
    _manifest(bad, url=emu.url).write_text(_manifest(bad, url=emu.url).read_text().replace(
        "target: coll-one", 'target: "coll\\e[31m\\u202e"'))
    r = run_cli("validate", str(bad / "connectors.yaml"), env=BASE_ENV)
    assert r.code == 1 and "connectors.yaml:11" in r.stderr and not [c for c in raw if c in r.output], repr(r.output)


def test_escaping_keeps_only_the_tools_own_colours():
    from reconciler.textsafe import escape, escape_keeping_colour, fence_for

    assert escape("a\x1b[2Jb\r\u202e\x00\tc\n") == "a\\u001b[2Jb\\u000d\\u202e\\u0000\tc\n"
    assert escape_keeping_colour("\x1b[31mred\x1b[0m \x1b]0;t\x07") == "\x1b[31mred\x1b[0m \\u001b]0;t\\u0007"
    assert fence_for("a ```` b") == "`````" and fence_for("plain") == "```"


def test_path_segments_are_percent_encoded_and_dot_segments_refused(tmp_path, emulator):
    """An Airstore workspace with URL-active characters reaches the server as one segment; `..`
    never reaches it (refused at validate, FILE:LINE, no call)."""
    from reconciler.errors import ProviderError
    from reconciler.http import seg

    assert seg("a/b?c#d%e") == "a%2Fb%3Fc%23d%25e"
    for bad in ("", ".", ".."):
        with pytest.raises(ProviderError):
            seg(bad)
    emu = emulator("airstore", targets=["ws-one"], api_key=KEY)
    path = tmp_path / "a.yaml"
    text = (HOSTILE / "airstore-target-dotdot.yaml").read_text()
    path.write_text(text)
    r = run_cli("plan", str(path), env={**BASE_ENV, "P_URL": emu.url})
    assert r.code == 1 and "a.yaml:12:13" in r.stderr and "'.' and '..' are not names" in r.stderr, r.output
    assert emu.stats["requests"].get("total", 0) == 0
    aimable = emulator("aimable", targets=["space-one/coll-one"], api_key=KEY)
    path.write_text((HOSTILE / "aimable-target-dotdot.yaml").read_text())
    r = run_cli("apply", "--yes", str(path), env={**BASE_ENV, "P_URL": aimable.url})
    assert r.code == 1 and "'.' and '..' are not names" in r.stderr and aimable.stats["requests"].get("total", 0) == 0


def test_manifest_symlinks_out_of_the_directory_fifos_and_devices_are_refused_unread(tmp_path):
    outside = tmp_path / "outside.yaml"
    outside.write_text("version: 1\n")
    root = tmp_path / "m"
    root.mkdir()
    (root / "link.yaml").symlink_to(outside)
    os.mkfifo(root / "pipe.yaml")
    r = run_cli("validate", str(root), timeout=20)
    assert r.code == 1 and "Traceback" not in r.output, r.output
    assert f"{root / 'link.yaml'}:1:1: is a symlink to {outside}" in r.stderr, r.stderr
    assert f"{root / 'pipe.yaml'}:1:1: is a FIFO" in r.stderr, r.stderr
    r = run_cli("validate", str(root / "pipe.yaml"), timeout=20)
    assert r.code == 1 and "is a FIFO" in r.stderr, r.output
    r = run_cli("validate", "/dev/zero", timeout=20)
    assert r.code == 1 and "/dev/zero:1:1: is a device" in r.stderr, r.output
    inside = root / "sub"
    inside.mkdir()
    (inside / "real.yaml").write_text("version: 1\n")
    (root / "alias.yaml").symlink_to(inside / "real.yaml")  # inside the directory: fine
    (root / "link.yaml").unlink()
    (root / "pipe.yaml").unlink()
    r = run_cli("validate", str(root))
    assert r.code == 0, r.output


@pytest.mark.parametrize("link", [".reconcile", ".reconcile/state.json.journal", ".reconcile/state.json"])
def test_a_state_that_resolves_outside_the_directory_is_refused_before_any_call(tmp_path, emulator, link):
    emu = emulator("airweave", targets=["coll-one"], api_key=KEY)
    root = tmp_path / "m"
    path = _manifest(root, url=emu.url)
    away = tmp_path / "away"
    away.mkdir()
    (root / ".reconcile").mkdir(exist_ok=True) if link != ".reconcile" else None
    (root / link).symlink_to(away if link == ".reconcile" else away / "x")
    r = run_cli("apply", "--yes", str(path), env=BASE_ENV)
    assert r.code == 1 and "Traceback" not in r.output, r.output
    assert "state " in r.stderr and f"outside the manifest directory {root.resolve()}" in r.stderr, r.stderr
    assert emu.stats["requests"].get("total", 0) == 0 and list(away.iterdir()) == []


def test_an_empty_secret_is_an_error_naming_the_variable(tmp_path, emulator):
    emu = emulator("airweave", targets=["coll-one"], api_key=KEY)
    path = _manifest(tmp_path, url=emu.url)
    for command in (["validate"], ["plan"], ["apply", "--yes"]):
        r = run_cli(*command, str(path), env={**BASE_ENV, "TOK": ""})
        assert r.code == 1 and f"{path}:17:30: TOK is empty" in r.stderr, r.output
    r = run_cli("validate", "--no-env", str(path), env={"TOK": ""})
    assert r.code == 0, r.output
    assert emu.stats["requests"].get("total", 0) == 0


def test_secrets_too_short_to_mask_are_refused(tmp_path, emulator):
    emu = emulator("airweave", targets=["coll-one"], api_key="abc")
    path = _manifest(tmp_path, url=emu.url)
    r = run_cli("plan", str(path), env={**BASE_ENV, "P_KEY": "abc"})
    assert r.code == 1 and f"{path}:6:14: P_KEY is 3 characters long" in r.stderr, r.output
    assert "abc" not in r.stderr.replace("characters", "")
    assert emu.stats["requests"].get("total", 0) == 0


@pytest.mark.parametrize("type_name", ["airweave", "nango", "airstore", "aimable", "connectors-api"])
def test_every_adapter_percent_encodes_ids_names_and_targets_in_url_paths(type_name):
    """A platform id, connector name or target holding '/', '?', '#' or '%' stays one path segment
    (captured in-process: the request never leaves the test)."""
    import httpx

    from reconciler.model import LiveConnector, ProviderConfig
    from reconciler.providers import provider_class

    seen: list[bytes] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.raw_path)
        return httpx.Response(404, json={"detail": "not found"})

    provider = provider_class(type_name)(ProviderConfig("p", type_name, "http://127.0.0.1:9"))
    provider.http._client = httpx.Client(base_url="http://127.0.0.1:9/", transport=httpx.MockTransport(handler))
    evil = "x/../y?z=1#w%"
    target = "space-one/coll?x" if type_name == "aimable" else "ws?x=1"
    provider.delete(LiveConnector(id=evil, key=evil, name=evil, source="github", target=target, fields={}))
    (path,) = seen
    assert b"x%2F..%2Fy%3Fz%3D1%23w%25" in path, path
    assert b"?z=1" not in path and b"/../" not in path, path
    if type_name in ("aimable", "airstore"):
        assert (b"coll%3Fx" if type_name == "aimable" else b"ws%3Fx%3D1") in path, path


def test_status_tables_on_a_terminal_show_values_as_text(monkeypatch):
    """On a TTY `status` and `sync` draw rich tables: a platform's status text is neither rich
    markup nor a terminal escape there."""
    import io

    from reconciler.commands.status import print_table

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    screen = Terminal()
    monkeypatch.setattr(sys, "stdout", screen)
    print_table(["NAME", "STATUS"], [["repo-docs", "[bold red]failed[/] \x1b[2J\u202e"]])
    text = screen.getvalue()
    assert "[bold red]failed[/]" in text and "\\u001b[2J" in text and "\\u202e" in text, text
    assert "\x1b[2J" not in text and "\u202e" not in text
