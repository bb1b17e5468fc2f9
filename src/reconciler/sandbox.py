"""``--sandbox``: run any command against the project's own emulators, embedded in-process.

Each provider of the manifest gets an emulator of its type on a free loopback port, its data kept in
``.reconcile/sandbox/<provider>/`` so a second run sees what the first one made, like a real remote.
Variables the manifests reference but the environment lacks get placeholder values: no account,
no secret and no network are needed to try the whole story.
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import replace
from typing import Iterator

from .emulators import EmulatorConfig, RunningEmulator
from .model import Manifest
from .providers import provider_class
from .state import sandbox_dir


class SandboxEnv(dict):
    """The real environment; ``placeholder`` stands in for a variable it lacks and that has no
    default (the resolver asks for it only then)."""

    def __init__(self) -> None:
        super().__init__(os.environ)

    @staticmethod
    def placeholder(name: str) -> str:
        return f"sandbox-{name.lower().replace('_', '-')}"


@contextmanager
def sandboxed(manifest: Manifest, *, sync_duration: float = 2.0) -> Iterator[Manifest]:
    """The manifest with every provider's url pointing at a running emulator."""
    data = sandbox_dir(manifest.root)
    running: list[RunningEmulator] = []
    providers = {}
    try:
        for name, cfg in manifest.providers.items():
            adapter = provider_class(cfg.type)
            targets = sorted({t for c in manifest.connectors.values() if c.provider == name
                              for t in adapter.containers(c)})
            emu = RunningEmulator(cfg.type, EmulatorConfig(
                api_key=cfg.api_key.reveal() if cfg.api_key else "sandbox", targets=targets,
                data_dir=str(data / name), sync_duration=sync_duration)).start()
            running.append(emu)
            providers[name] = replace(cfg, url=emu.url, allow_insecure_http=True)
        yield replace(manifest, providers=providers)
    finally:
        for emu in running:
            emu.stop()
