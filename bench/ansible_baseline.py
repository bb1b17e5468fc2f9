"""The Ansible baseline's command line (bench/ansible/connectors.yml), for bench/run.py.

Needs ansible-core in the environment: ``pip install ansible-core`` (not a package dependency).
"""
from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

PLAYBOOK = Path(__file__).resolve().parent / "ansible" / "connectors.yml"


def available() -> bool:
    return ansible_playbook() is not None


def ansible_playbook() -> str | None:
    local = Path(sys.executable).with_name("ansible-playbook")
    return str(local) if local.exists() else shutil.which("ansible-playbook")


def ansible_cmd(scenario: str, work: Path, w, url: str, api_key: str, token: str, target: str) -> list[str]:  # type: ignore[no-untyped-def]
    from run import cron, name  # noqa: PLC0415 - bench/run.py

    variables = {"url": url, "api_key": api_key, "token": token, "target": target,
                 "connectors": [{"name": name(i), "repo": f"company/repo-{i}",
                                 "branch": "release" if i in w.edited else "main", "cron": cron(i)}
                                for i in range(w.n)]}
    vars_file = work / "ansible-vars.json"
    vars_file.write_text(json.dumps(variables))
    exe = ansible_playbook()
    if exe is None:
        raise SystemExit("ansible-playbook not found: pip install ansible-core")
    cmd = [exe, "-i", "localhost,", str(PLAYBOOK), "-e", f"@{vars_file}",
           "-e", f"ansible_python_interpreter={sys.executable}"]
    if scenario == "ansible-plan":
        cmd.append("--check")
    return cmd
