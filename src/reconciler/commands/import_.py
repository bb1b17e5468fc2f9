"""``reconcile import PATH --provider NAME``: write manifests for what nothing manages yet, adopt it.

"Nothing manages" is exactly what a plan reports as unmanaged: not in the state, not matched by any
manifest connector. Whether *this* state owns a connector is what counts, not a marker: one whose
ownership marker names this state's lineage but which has no entry was forgotten (``state rm``) and
is imported like any other; one whose marker names another state (or none) is skipped, since that
state may still manage it, unless ``--include-marked`` says no state does (it was lost). The new file is validated with the loader beside the existing manifests before it
is written; then, if PATH reads it, the connectors are adopted into the state (without a credential
fingerprint: the planner assumes git's credentials are the live ones until the next apply records
them). The whole import holds the state lock, like an apply.
"""
from __future__ import annotations

import os
import re
import shutil
import tempfile
from contextlib import ExitStack
from datetime import datetime, timezone
from pathlib import Path

import click

from .. import console, importer
from ..errors import ManifestError, ReconcileError
from ..formatting import format_text
from ..manifest import load
from ..manifest.schema import SCHEMA_FILE
from ..model import Connector, LiveConnector, Manifest
from ..plan import planner
from ..providers import Provider
from ..state import holder_description
from ..state.file import write_atomic
from ..state.model import StateEntry
from ._common import load_manifest, manifest_options, open_engine

SCHEMA_HEADER = re.compile(r"^#\s*yaml-language-server:\s*\$schema=(\S+)")


class _PlaceholderEnv(dict):
    """The environment, with stand-ins for what it lacks: connectors' credentials are not needed to
    import (nothing is sent), nor are the variables the new file introduces (not set yet)."""

    MARK = "unset-placeholder-"

    def __init__(self) -> None:
        super().__init__(os.environ)

    def placeholder(self, name: str) -> str:
        return f"{self.MARK}{name.lower()}"


def _load(path: str, provider_name: str, sandbox: bool) -> Manifest:
    if sandbox:
        return load_manifest(path, sandbox=True)
    manifest = load(path, env=_PlaceholderEnv())
    cfg = manifest.providers.get(provider_name)
    needed = {"the provider's api_key": cfg.api_key.reveal() if cfg and cfg.api_key else "",
              "the provider's url": cfg.url if cfg else "",
              "the state's dsn": manifest.state.dsn.reveal() if manifest.state.dsn else ""}
    unset = [what for what, value in needed.items() if _PlaceholderEnv.MARK in value]
    if unset:
        load(path)  # the real environment: reports exactly which variables are missing, and where
        raise ReconcileError(f"{', '.join(unset)} reads a variable that is not set")
    return manifest


@click.command("import")
@click.argument("path", type=click.Path(exists=True))
@click.option("--provider", "provider_name", required=True, help="The providers: entry to import from.")
@click.option("--target", help="Only this target (collection, workspace, space/collection); it is listed too.")
@click.option("-o", "--out", "out_dir", type=click.Path(file_okay=False),
              help="Directory to write imported-<provider>.yaml into (default: PATH, or its directory).")
@click.option("--lock-timeout", type=float, default=0.0, show_default=True,
              help="Seconds to wait for an apply holding the state lock.")
@click.option("--include-marked", is_flag=True,
              help="Also import connectors whose ownership marker names another state (or none): that state "
                   "was lost, or manages them no more. Without it they are skipped.")
@manifest_options
def command(path: str, provider_name: str, target: str | None, out_dir: str | None, lock_timeout: float,
            include_marked: bool, sandbox: bool, state_path: str | None, parallelism: int) -> None:
    """Write manifests for live connectors that nothing manages yet, and adopt them into the state."""
    manifest = _load(path, provider_name, sandbox)
    if provider_name not in manifest.providers:
        declared = ", ".join(sorted(manifest.providers)) or "none"
        raise ReconcileError(f"provider {provider_name!r} is not declared in the manifests at {path} "
                             f"(declared: {declared}); add it under providers: first")
    root = Path(path)
    directory = Path(out_dir) if out_dir else (root if root.is_dir() else root.parent)
    with ExitStack() as stack:
        engine = open_engine(stack, manifest, sandbox=sandbox, state_path=state_path, parallelism=parallelism)
        stack.enter_context(engine.backend.lock(timeout=lock_timeout, holder=holder_description()))
        state = engine.backend.load()
        provider = engine.providers[provider_name]
        if target and provider.missing_targets([target]):
            raise ReconcileError(f"--target {target!r} does not exist on provider {provider_name!r}; "
                                 "name an existing target (collection, workspace, ...) or leave --target out")
        entries = state.for_provider(provider_name)
        if provider.capabilities.lists_per_target and not target and not _plan_targets(engine.manifest, provider, entries):
            # nothing would be listed, and "every connector is managed already" would be a guess
            raise ReconcileError(f"{provider_name} ({provider.type}) lists connectors per target, and no manifest "
                                 f"or state entry names one on {provider_name!r} yet: say which with --target "
                                 "(a collection, workspace or space/collection); nothing was imported")
        found, collisions, declared = _unmanaged(engine.manifest, provider, entries, target,
                                                 engine.keys[provider_name])
        # another state may manage it: its marker names that state's lineage (or no lineage at all)
        skipped = [] if include_marked else [l for l in found if l.marked_by_another(state.lineage)]
        skipped_ids = {l.id for l in skipped}
        lives = [provider.read(l) if not l.complete else l for l in found if l.id not in skipped_ids]
        for live in [l for l in lives if provider.import_blocker(l)]:
            console.err(f"skipped {live.name or live.key or live.id} (id {live.id}): {provider.import_blocker(live)}")
            lives.remove(live)
        for live in skipped:
            console.err(f"skipped {live.name or live.id} (id {live.id}): its ownership marker says another state "
                        "manages it, not this one. If no state does any more (that state was lost), import it "
                        "anyway with --include-marked")
        for name in declared:
            console.err(f"{name} is declared in a manifest but not in the state: the next apply adopts it "
                        "(import writes manifests only for connectors no manifest declares)")
        if not lives:
            console.out(f"Nothing to import: every connector on {provider_name} is managed already.")
            return
        names = importer.choose_names(lives, set(manifest.connectors) | set(state.entries))
        for live, declared in collisions:
            if live.id not in names:
                continue
            console.err(f"{live.name} (id {live.id}, target {live.target}) has the name of declared connector "
                        f"{declared.name!r} (target {declared.target}), but it is another connector: imported as "
                        f"{names[live.id]!r}; rename one of them on the platform to tell them apart")
        cfg = manifest.providers[provider_name]
        items = [importer.build(provider_name, l, names[l.id], provider.credential_template(l),
                                provider.scope_defaults(l.source)) for l in lives]
        out_file = _free_file(directory, provider_name)
        text = importer.render(provider_name, cfg.type, items, schema_ref=_schema_ref(manifest, directory),
                               when=datetime.now(timezone.utc).isoformat(timespec="seconds"))
        text = format_text(text, name=out_file.name).text  # what `reconcile fmt --check` accepts
        _validate(manifest, text, out_file.name)
        write_atomic(out_file, text)
        adopted = _includes(path, out_file)
        if adopted:
            for item in items:
                live = item.live
                engine.backend.put(StateEntry(
                    name=item.name, provider=provider_name, type=cfg.type, id=live.id, key=live.key,
                    source=live.source, target=live.target, version=live.version, fields=dict(live.fields),
                    fingerprint=None))
            engine.backend.flush()
    _report(items, out_file, adopted, path)


def _plan_targets(manifest: Manifest, provider: Provider, entries: list[StateEntry]) -> set[str]:
    """The targets a plan of this provider lists: those its declared connectors and state entries name."""
    desired = [c for c in manifest.connectors.values() if c.provider == provider.config.name]
    return {c.target for c in desired if c.target} | {e.target for e in entries if e.target}


def _unmanaged(manifest: Manifest, provider: Provider, entries: list[StateEntry], target: str | None,
               key: bytes) -> tuple[list[LiveConnector], list[tuple[LiveConnector, Connector]], list[str]]:
    """What nothing manages, which of those share their identity with a declared connector, and the
    declared connectors a plan would adopt (live, in no entry: ``state rm`` of one still declared).

    Inside the targets a plan lists, the plan's own pairing decides (so the two always agree);
    what lives elsewhere (``import`` without ``--target`` lists the whole account where it can) is
    unmanaged by definition and must not be paired by name with a connector declared elsewhere."""
    desired = [c for c in manifest.connectors.values() if c.provider == provider.config.name]
    plan_targets = _plan_targets(manifest, provider, entries)
    provider.recall(entries)
    listed = list(provider.list([target])) if target else list(provider.list_everything(sorted(plan_targets)))
    visible = [l for l in listed if l.target is None or l.target in plan_targets]
    pairing = planner.pair(desired=desired, live=visible, entries=entries, identity=provider.identity,
                           desired_fields=provider.desired_fields, fingerprint_key=key)
    outside = [l for l in listed if not (l.target is None or l.target in plan_targets)]
    found = [l for l in pairing.unmanaged + outside if target is None or l.target in (None, target)]
    declared = {provider.identity(c): c for c in desired if provider.identity(c)}
    adopted = sorted(m.connector.name for m in pairing.matches
                     if m.adopt and m.live is not None and (target is None or m.live.target in (None, target)))
    return found, [(l, declared[l.key]) for l in found if l.key in declared], adopted


def _free_file(directory: Path, provider: str) -> Path:
    """``imported-<provider>.yaml``, or the next free ``-N`` name: an earlier import is never overwritten."""
    stem = f"imported-{importer.slug(provider) or 'provider'}"
    candidate, n = directory / f"{stem}.yaml", 2
    while candidate.exists():
        candidate, n = directory / f"{stem}-{n}.yaml", n + 1
    return candidate


def _schema_ref(manifest: Manifest, directory: Path) -> str | None:
    """The ``$schema`` the existing manifests use (re-pointed from the new file), else the schema file
    when it sits in the same repository (a relative path that still means something once committed);
    else None: the file then says how to get one (`reconcile schema`), never a path into the install."""
    for file in manifest.files:
        try:
            first = Path(file).read_text(encoding="utf-8").split("\n", 1)[0]
        except OSError:
            continue
        m = SCHEMA_HEADER.match(first)
        if m:
            ref = m.group(1)
            if "://" in ref or os.path.isabs(ref):
                return ref
            return os.path.relpath(os.path.normpath(Path(file).parent / ref), directory.resolve())
    here = directory.resolve()
    root = next((d for d in (here, *here.parents) if (d / ".git").exists()), None)
    if root is not None and Path(SCHEMA_FILE).resolve().is_relative_to(root):
        return os.path.relpath(SCHEMA_FILE, here)
    return None


def _validate(manifest: Manifest, text: str, filename: str) -> None:
    """Load the manifests with the new file beside them (in a scratch directory) before anything is
    written: output the loader rejects is a bug here, and must never reach the user's tree or state."""
    with tempfile.TemporaryDirectory(prefix="reconcile-import-") as scratch:
        for i, file in enumerate(manifest.files):
            shutil.copyfile(file, Path(scratch) / f"{i:04d}-{Path(file).name}")
        new = Path(scratch) / filename
        new.write_text(text, encoding="utf-8")
        try:
            load(scratch, env=_PlaceholderEnv())
        except ManifestError as exc:
            mine = [d for d in exc.diagnostics if d.location and Path(d.location.file).name == filename]
            if not mine:
                raise
            raise ReconcileError("the manifest import would write does not validate (a bug in reconcile import; "
                                 "nothing was written or adopted):\n  " + "\n  ".join(str(d) for d in mine)) from None


def _includes(path: str, out_file: Path) -> bool:
    """Whether loading PATH reads ``out_file`` (a directory PATH reads its tree, hidden dirs aside)."""
    root = Path(path).resolve()
    if not root.is_dir():
        return False
    try:
        rel = out_file.resolve().relative_to(root)
    except ValueError:
        return False
    return not any(part.startswith(".") for part in rel.parts[:-1])


def _report(items: list[importer.Imported], out_file: Path, adopted: bool, path: str) -> None:
    console.out(f"Wrote {len(items)} connector{'s' if len(items) != 1 else ''} to {out_file}:")
    for item in sorted(items, key=lambda i: i.name):
        console.out(f"  {item.name}  (live id {item.live.id})")
    variables = [v for item in sorted(items, key=lambda i: i.name) for v in item.variables]
    if adopted:
        console.out("Adopted into the state: the reconciler manages them from now on.")
    else:
        console.out(f"NOT adopted: {path} does not read {out_file}, so the state was left alone (adopting them "
                    f"would plan their deletion). Import into {path} itself (the default) to adopt them.")
    if variables:
        console.out("Set these variables (the platforms never reveal credentials) before the next plan:")
        for v in variables:
            console.out(f"  {v}")
