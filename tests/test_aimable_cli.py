"""`reconcile plan/apply` as a real process against the Aimable emulator: the whole lifecycle."""
from __future__ import annotations

from pathlib import Path

from conftest import EMU_HTTP

TOKEN = "ya29.cli-e2e-secret-token-1"
ROTATED = "ya29.cli-e2e-secret-token-2"

MANIFEST = """version: 1
providers:
  aim:
    type: aimable
    url: {url}
    api_key: ${{AIM_KEY}}
connectors:
  handbook:
    provider: aim
    source: google-drive
    target: {target}
    scope:
      folder_ids: {folders}
    credentials:
      access_token: ${{DRIVE_TOKEN}}
    sync_on_apply: true
"""


def live_connectors(emu, target: str) -> list[dict]:
    space, collection = target.split("/")
    return EMU_HTTP.get(f"{emu.url}/v1/spaces/{space}/collections/{collection}/connectors",
                     headers={"X-API-Key": "test-key"}).json()["data"]


def test_lifecycle_converges_and_never_prints_the_secret(emulator, cli, tmp_path: Path):
    emu = emulator("aimable", targets=["sp1/col1", "sp1/col2"])
    manifest = tmp_path / "main.yaml"
    env = {"AIM_KEY": "test-key", "DRIVE_TOKEN": TOKEN}
    outputs: list[str] = []

    def write(target: str = "sp1/col1", folders: str = '["1A2B3C4D"]') -> None:
        manifest.write_text(MANIFEST.format(url=emu.url, target=target, folders=folders))

    def run(*args: str, expect: int = 0) -> str:
        result = cli(*args, str(manifest), env=env, cwd=tmp_path)
        outputs.append(result.output)
        assert result.code == expect, result.output
        return result.output

    write()
    assert "1 to add" in run("apply", "--yes")
    (created,) = live_connectors(emu, "sp1/col1")
    assert created["scope_config"] == {"folder_ids": ["1A2B3C4D"]}
    run("plan", "--detailed-exitcode")  # converged: exit 0, no changes

    write(folders='["1A2B3C4D", "NEW"]')
    assert "scope.folder_ids" in run("plan", "--detailed-exitcode", expect=2)
    run("apply", "--yes")
    assert [c["id"] for c in live_connectors(emu, "sp1/col1")] == [created["id"]]  # in place, same id

    env["DRIVE_TOKEN"] = ROTATED
    assert "credentials" in run("plan", "--detailed-exitcode", expect=2)
    run("apply", "--yes")
    run("plan", "--detailed-exitcode")

    write(target="sp1/col2", folders='["1A2B3C4D", "NEW"]')
    assert "replace" in run("plan", "--detailed-exitcode", expect=2)
    run("apply", "--yes")
    assert live_connectors(emu, "sp1/col1") == []
    (moved,) = live_connectors(emu, "sp1/col2")
    assert moved["id"] != created["id"]
    run("plan", "--detailed-exitcode")

    providers_only = MANIFEST.format(url=emu.url, target="", folders="").split("connectors:")[0]
    manifest.write_text(providers_only + "connectors: {}\n")
    assert "1 to destroy" in run("apply", "--yes")
    assert live_connectors(emu, "sp1/col2") == []

    stored = "".join(p.read_text(errors="replace") for p in tmp_path.rglob("*") if p.is_file() and p != manifest)
    for text in [*outputs, stored]:
        assert TOKEN not in text and ROTATED not in text
