"""The Dockerfile and the GitLab CI example, checked structurally (no docker daemon here): a
non-root image whose entrypoint is `reconcile`, built from files that exist, and a pipeline whose
`reconcile` invocations exist with those options, applying HEAD one job at a time with a
--max-deletes guard, and drift apart from the applies."""
from __future__ import annotations

import json
import re
import shlex

import yaml

from conftest import ROOT
from test_github_actions import reconcile_commands

DOCKERFILE = ROOT / "Dockerfile"
GITLAB = ROOT / "examples" / "gitlab-ci" / ".gitlab-ci.yml"


def instructions(text: str) -> list[tuple[str, str]]:
    joined = re.sub(r"\\\n", " ", text)
    out = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def test_dockerfile_runs_reconcile_as_an_unprivileged_user():
    steps = instructions(DOCKERFILE.read_text())
    stages = [i for i, (word, _) in enumerate(steps) if word == "FROM"]
    final = steps[stages[-1]:]
    words = [w for w, _ in final]
    assert json.loads(dict(final)["ENTRYPOINT"]) == ["reconcile"]
    user = [rest for w, rest in final if w == "USER"]
    assert user and user[-1].split(":")[0] not in ("root", "0")
    assert words.index("USER") > max(i for i, w in enumerate(words) if w == "RUN")  # installs happen before
    for word, rest in steps:
        if word == "COPY" and "--from" not in rest:
            for source in shlex.split(rest)[:-1]:
                assert (ROOT / source).exists(), source
        if word == "FROM":
            assert re.match(r"python:3\.1[1-9]", rest), rest  # the project's Python
    assert any("pip install" in rest for w, rest in final if w == "RUN")
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert ".git" in ignored and "**/.reconcile" in ignored  # no state or history baked into an image


def test_gitlab_pipeline_uses_the_image_and_applies_head_with_a_guard():
    ci = yaml.safe_load(GITLAB.read_text())
    assert ci["image"]["entrypoint"] == [""]  # shell scripts, not `reconcile <script>`
    from reconciler.cli import cli

    seen = set()
    for name, job in ci.items():
        if not isinstance(job, dict) or "script" not in job:
            continue
        for line in job["script"]:
            for argv in reconcile_commands(line.replace("; ", "\n")):
                command = cli.get_command(None, argv[1])
                known = {o for p in command.params for o in getattr(p, "opts", [])}
                assert all(a in known for a in argv[2:] if a.startswith("-")), argv
                seen.add(argv[1])
    assert seen == {"validate", "fmt", "plan", "apply", "drift"}
    apply_ = ci["apply"]
    assert apply_["resource_group"] != ci["drift"]["resource_group"] and apply_["interruptible"] is False
    script = "\n".join(apply_["script"])
    assert "FETCH_HEAD" in script and '--max-deletes "$MAX_DELETES"' in script
    assert ci["variables"]["MAX_DELETES"] == "0"
    assert "plan.json" in ci["plan"]["artifacts"]["paths"]
    assert any("schedule" in r["if"] for r in ci["drift"]["rules"])
