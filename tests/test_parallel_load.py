"""Manifest files parsed in forked workers give exactly what one process gives, whatever happens
to a worker; and the CLI's errors name the right file and line for a file a worker read."""
from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from conftest import run_cli
from reconciler.manifest import parallel
from reconciler.manifest.yaml_loader import load_file

ROOT = Path(__file__).resolve().parent.parent
CORPUS = sorted(str(p) for d in ("tests/manifests", "tests/hostile", "examples")
                for p in (ROOT / d).rglob("*.y*ml"))


@pytest.fixture(scope="module")
def baseline():
    return [load_file(f) for f in CORPUS]


@pytest.fixture
def forced(monkeypatch, caplog):
    """Every file list forks, on this machine's cores or not (and beside the session's emulator
    threads, which the workers never touch); each test proves it did."""
    monkeypatch.setattr(parallel, "usable_cores", lambda: 3)
    monkeypatch.setattr(parallel, "MIN_BYTES_PER_WORKER", 1)
    monkeypatch.setattr(parallel, "other_threads", lambda: False)
    caplog.set_level(logging.INFO, logger="reconciler.manifest")
    yield
    said = [r.getMessage() for r in caplog.get_records("call")]
    assert f"reading {len(CORPUS)} manifest files in 3 processes" in said, said


def _same(a, b) -> None:
    assert len(a) == len(b)
    for (doc_a, diags_a), (doc_b, diags_b) in zip(a, b):
        assert diags_a == diags_b
        assert (doc_a is None) == (doc_b is None)
        if doc_a is not None:
            # repr: a NaN the corpus holds is not equal to itself
            assert (doc_a.file, repr(doc_a.data), doc_a.marks, doc_a.key_marks, doc_a.text_hash) == \
                   (doc_b.file, repr(doc_b.data), doc_b.marks, doc_b.key_marks, doc_b.text_hash)


def test_the_corpus_reads_the_same_in_workers(forced, baseline):
    assert len(CORPUS) > 50
    _same(parallel.load_files(CORPUS), baseline)


def test_a_position_asked_later_is_found_for_a_file_a_worker_read(forced):
    """A lean document finds deep positions by hashing its text again: the worker's hash must match."""
    results = parallel.load_files(CORPUS)
    checked = 0
    for file, (doc, _) in zip(CORPUS, results):
        if doc is not None and doc.text_hash is not None and isinstance(doc.data, dict) and doc.data.get("connectors"):
            own, _ = load_file(file)
            name = next(iter(doc.data["connectors"]))
            assert doc.location(("connectors", name, "source")) == own.location(("connectors", name, "source"))
            checked += 1
    assert checked > 10


def test_a_worker_that_dies_costs_only_time(forced, baseline):
    parent = os.getpid()

    def dying(file: str):  # type: ignore[no-untyped-def]
        if os.getpid() != parent:
            os._exit(9)  # a worker killed mid-parse: no results file
        return load_file(file)

    _same(parallel.load_files(CORPUS, parse=dying), baseline)


def test_a_worker_that_cannot_pickle_its_results_costs_only_time(forced, baseline):
    parent = os.getpid()

    def unpicklable(file: str):  # type: ignore[no-untyped-def]
        doc, problems = load_file(file)
        if os.getpid() != parent and doc is not None:
            doc.data = lambda: None  # pickling fails in the worker
        return doc, problems

    _same(parallel.load_files(CORPUS, parse=unpicklable), baseline)


def test_shares_are_balanced_by_size_and_cover_every_file(tmp_path):
    files = []
    for i, size in enumerate([900, 100, 500, 500, 50, 950]):
        f = tmp_path / f"{i}.yaml"
        f.write_text("#" * size * 1024)
        files.append(str(f))
    parts = parallel.shares(files, 2)
    assert sorted(i for p in parts for i in p) == list(range(6))
    loads = [sum(os.path.getsize(files[i]) for i in p) for p in parts]
    assert max(loads) - min(loads) <= 100 * 1024
    assert parallel.shares(files[:1], 4) == [[0]]
    small = tmp_path / "small.yaml"
    small.write_text("version: 1\n")
    assert len(parallel.shares([str(small)] * 5, 4)) == 1  # too few bytes to pay for a fork


def _connectors(i: int, count: int) -> str:
    out = ["version: 1", "connectors:"]
    for j in range(count):
        out += [f"  c-{i:02d}-{j:04d}:", "    provider: aw", "    source: github", "    target: docs-x1",
                "    scope:", f"      repo_name: org/r{j}", "    credentials:", "      personal_access_token: ${TOKEN}"]
    return "\n".join(out) + "\n"


def test_cli_errors_in_files_workers_read_name_file_and_line(tmp_path):
    """Big enough that the CLI forks on any machine with two cores; one mistake deep in the last file."""
    root = tmp_path / "m"
    root.mkdir()
    (root / "providers.yaml").write_text("version: 1\nproviders:\n  aw:\n    type: airweave\n    api_key: ${KEY}\n")
    for i in range(6):
        (root / f"c{i}.yaml").write_text(_connectors(i, 1000))
    text = (root / "c5.yaml").read_text().replace("      repo_name: org/r399\n", "      repo_nme: org/r399\n")
    (root / "c5.yaml").write_text(text)
    line = text.splitlines().index("      repo_nme: org/r399") + 1
    r = run_cli("-v", "validate", str(root), env={"KEY": "k" * 20, "TOKEN": "t" * 20})
    assert r.code == 1 and "Traceback" not in r.output, r.output
    if parallel.usable_cores() > 1:
        assert "reading 7 manifest files in 2 processes" in r.stderr, r.stderr[:2000]
    assert f"c5.yaml:{line}:" in r.stderr and "repo_nme" in r.stderr, r.stderr
    (root / "c5.yaml").write_text(text.replace("repo_nme", "repo_name"))
    r = run_cli("validate", str(root), env={"KEY": "k" * 20, "TOKEN": "t" * 20})
    assert r.code == 0, r.output


@pytest.fixture
def beside(monkeypatch):
    """Forking allowed from a few bytes on, with work for the parent meanwhile."""
    monkeypatch.setattr(parallel, "usable_cores", lambda: 2)
    monkeypatch.setattr(parallel, "MIN_BYTES_BESIDE", 1)
    monkeypatch.setattr(parallel, "other_threads", lambda: False)


def _parse_noting_pids(where: Path):  # type: ignore[no-untyped-def]
    def parse(file: str):  # type: ignore[no-untyped-def]
        with open(where / str(os.getpid()), "a") as fh:
            fh.write(file + "\n")
        return load_file(file)
    return parse


def test_meanwhile_runs_here_while_workers_parse_every_file(beside, baseline, tmp_path):
    ran: list[int] = []
    results = parallel.load_files(CORPUS, parse=_parse_noting_pids(tmp_path), meanwhile=lambda: ran.append(os.getpid()))
    _same(results, baseline)
    assert ran == [os.getpid()]
    parsers = {int(p.name) for p in tmp_path.iterdir()}
    assert parsers and os.getpid() not in parsers  # this process parsed nothing itself
    assert sorted(f for p in tmp_path.iterdir() for f in p.read_text().split()) == sorted(CORPUS)


def test_meanwhile_below_the_threshold_runs_first_then_everything_is_parsed_here(beside, baseline, tmp_path,
                                                                                  monkeypatch):
    monkeypatch.setattr(parallel, "MIN_BYTES_BESIDE", 10 ** 12)
    monkeypatch.setattr(parallel, "MIN_BYTES_PER_WORKER", 10 ** 12)
    order: list[str] = []

    def parse(file: str):  # type: ignore[no-untyped-def]
        order.append("parse")
        return load_file(file)

    _same(parallel.load_files(CORPUS, parse=parse, meanwhile=lambda: order.append("meanwhile")), baseline)
    assert order == ["meanwhile"] + ["parse"] * len(CORPUS)


def test_with_meanwhile_a_worker_that_dies_costs_only_time(beside, baseline):
    parent = os.getpid()

    def dying(file: str):  # type: ignore[no-untyped-def]
        if os.getpid() != parent:
            os._exit(9)
        return load_file(file)

    ran: list[int] = []
    _same(parallel.load_files(CORPUS, parse=dying, meanwhile=lambda: ran.append(1)), baseline)
    assert ran == [1]


def test_the_workers_job_runs_after_its_parsed_share_is_freed(beside, baseline):
    """The first worker's job (a command's state read ahead) runs once its share is written and let
    go: held through the job, the share was the peak RSS of a plan of 100,000 connectors."""
    import gc

    from reconciler.manifest.yaml_loader import Document

    def documents() -> int:
        return sum(isinstance(o, Document) for o in gc.get_objects())

    inherited = documents()  # this process's (the baseline's), which the worker starts with
    job = parallel.Beside(documents)
    _same(parallel.load_files(CORPUS, beside=job, meanwhile=lambda: None), baseline)
    assert job.result() == inherited


def test_with_readers_parsing_the_parent_compiles_the_document_validator_after_its_own_work(beside, monkeypatch):
    """While reader processes parse, this process runs its `meanwhile` and then builds the document
    pass's compiled validator (14 ms), which the first check after the parse needs."""
    from reconciler.manifest import loader

    order: list[str] = []
    monkeypatch.setattr(loader, "compile_document_validator", lambda: order.append("compile"))
    real = loader.validate_document
    monkeypatch.setattr(loader, "validate_document", lambda data: order.append("validate") or real(data))
    loader.load(ROOT / "examples" / "airweave", env={"AIRWEAVE_URL": "https://api.airweave.ai", "AIRWEAVE_API_KEY": "k" * 24,
                     "GITHUB_TOKEN": "t" * 24, "NOTION_ACCESS_TOKEN": "n" * 24},
                meanwhile=lambda: order.append("meanwhile"))
    assert order[:2] == ["meanwhile", "compile"] and set(order[2:]) == {"validate"}
