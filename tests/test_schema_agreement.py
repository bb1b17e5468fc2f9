"""The compiled validity check (jsonschema-rs) and jsonschema give the same verdicts.

The loader trusts jsonschema-rs's "valid" and asks jsonschema (which words the messages) about
everything else, so a body jsonschema-rs accepts and jsonschema refuses would slip through
validation. These tests hold the two to the same verdict on every manifest the project keeps
(the invalid corpus, the hostile corpus, the examples) and on hypothesis-generated mutations of
valid connectors, for every provider type's def.
"""
from __future__ import annotations

import copy
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler.manifest import schema as S
from reconciler.manifest.yaml_loader import load_file

ROOT = Path(__file__).resolve().parent.parent
CORPORA = [ROOT / "tests" / "manifests", ROOT / "tests" / "hostile", ROOT / "examples"]
TYPES = S.connector_types()
DEFS = ["connector"] + [f"connector_{t}" for t in TYPES]


def _verdicts(def_name: str | None, value) -> tuple[bool, bool]:
    slow = (S._document_validator() if def_name is None else S._def_validator(def_name)).is_valid(value)
    try:
        fast = S._fast_validator(def_name).is_valid(value)
    except Exception:  # noqa: BLE001 - the loader falls back to jsonschema for such values
        fast = slow
    return fast, slow


def _strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _strings(k)
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


def _agree(where: str, def_name: str | None, value) -> bool:
    """The loader's verdict is jsonschema-rs's "valid", else jsonschema's: sound only if jsonschema-rs
    never accepts what jsonschema refuses. It may refuse more where ECMA-262 regexes are stricter than
    Python's (``$`` before a final newline, Unicode digits): that costs a second look, never a verdict.
    Returns whether jsonschema says valid."""
    fast, slow = _verdicts(def_name, value)
    assert not (fast and not slow), f"{where}: jsonschema-rs accepts what jsonschema refuses"
    if slow and not fast:
        assert any(t.endswith("\n") or not t.isascii() for t in _strings(value)), (
            f"{where}: jsonschema-rs refuses a value jsonschema accepts, and no ECMA/Python regex difference explains it")
    return slow


def test_every_def_compiles_for_jsonschema_rs():
    # a pattern jsonschema-rs cannot compile (e.g. Python's \Z) would silently send every connector
    # down the slow path
    for def_name in [None, *DEFS, *(d for d in S._schema()["$defs"] if d.startswith("name_"))]:
        S._fast_validator(def_name)


def _documents():
    for corpus in CORPORA:
        for file in sorted(corpus.rglob("*.y*ml")):
            doc, _problems = load_file(str(file))
            if doc is not None:
                yield file, doc.data


def test_corpus_documents_and_every_connector_under_every_def_agree():
    checked = 0
    for file, data in _documents():
        _agree(f"{file}: document pass", None, data)
        connectors = data.get("connectors") if isinstance(data, dict) else None
        for name, body in (connectors or {}).items() if isinstance(connectors, dict) else ():
            for def_name in DEFS:
                _agree(f"{file}: {name} under {def_name}", def_name, body)
                checked += 1
    assert checked > 500  # the corpora really were read


# -- generated ------------------------------------------------------------------------------------

def _example_connectors() -> dict[str, dict]:
    """One valid connector per provider type, from examples/<type>/ (kept valid by their owners'
    tests, so this follows the schema as it changes)."""
    out = {}
    for kind in TYPES:
        for file in sorted((ROOT / "examples" / kind).glob("*.y*ml")):
            doc, problems = load_file(str(file))
            for body in ((doc.data.get("connectors") or {}).values() if doc else ()):
                if isinstance(body, dict) and kind not in out and S._def_validator(f"connector_{kind}").is_valid(body):
                    out[kind] = body
    return out


_VALID = _example_connectors()

_leaf = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 10**6), st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12), st.sampled_from(["", "main", "o/r", "0 3 * * *", "1h", "${X}", "a\n", "ws1", "../x",
                                           "every hour", "OAUTH2", "github", "s3", "manual"]),
    st.lists(st.text(max_size=4), max_size=3),
)
_key = st.sampled_from(["provider", "source", "target", "description", "scope", "schedule", "credentials",
                        "syncs", "member", "lifecycle", "sync_on_apply", "cron", "every", "continuous", "manual",
                        "repo_name", "branch", "bucket", "prefix", "type", "access_token", "unknown_key"])


@st.composite
def _mutated(draw):
    kind = draw(st.sampled_from(sorted(_VALID)))
    body = copy.deepcopy(_VALID[kind])
    for _ in range(draw(st.sampled_from([0, 1, 1, 2, 3]))):
        target = body
        sub = draw(st.sampled_from([None, "scope", "schedule", "credentials", "syncs"]))
        if sub is not None:
            if not isinstance(body.get(sub), dict):
                body[sub] = {}
            target = body[sub]
        op = draw(st.sampled_from(["set", "delete", "retext"]))
        strings = sorted(k for k, v in target.items() if isinstance(v, str))
        if op == "delete" and target:
            target.pop(draw(st.sampled_from(sorted(target))))
        elif op == "retext" and strings:  # a near miss: the same key, another plausible text
            target[draw(st.sampled_from(strings))] = draw(st.sampled_from(
                ["main", "o/r", "0 3 * * *", "0 3  * * *", "1h", "${X}", "${X}\n", "a\n", "ws1", "../x", "", " "]))
        else:
            target[draw(_key)] = draw(_leaf)
    return kind, body


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_mutated())
def test_generated_connectors_agree(case):
    kind, body = case
    for def_name in ("connector", f"connector_{kind}"):
        _agree(f"{def_name}: {body!r}", def_name, body)


def test_the_generators_seeds_are_valid():
    # the mutations start from valid bodies (one per type); otherwise the property above would test
    # invalid ones only
    assert sorted(_VALID) == sorted(TYPES)
    for kind, body in _VALID.items():
        assert _verdicts(f"connector_{kind}", body) == (True, True), kind


# -- the loader's one call per provider type ------------------------------------------------------

def _all_plain(bodies: dict, kind: str | None) -> bool:
    return all(S.validate_connector(name, body, kind) == [] for name, body in bodies.items())


def test_a_batch_is_plainly_valid_only_where_every_connector_of_it_is():
    """plainly_valid_connectors answers for all of one type's connectors at once; its "yes" lets the
    loader skip each one's check, so it must never say yes where one of them has a problem."""
    said_yes = 0
    for file, data in _documents():
        connectors = data.get("connectors") if isinstance(data, dict) else None
        if not isinstance(connectors, dict):
            continue
        for kind in (*TYPES, None):
            if S.plainly_valid_connectors(connectors, kind):
                assert _all_plain(connectors, kind), f"{file}: under {kind}"
                said_yes += 1
    assert said_yes > 10  # it does say yes: the loader takes the fast way for valid manifests
    for kind, body in _VALID.items():
        assert S.plainly_valid_connectors({"conn-one": body, "conn-two": body}, kind)


_names = st.sampled_from(["conn-one", "conn-two", "x", "a" * 60, "UPPER", "with space", "conn_3", "ok-name-4"])


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(_names, _mutated()), min_size=1, max_size=4))
def test_generated_batches_are_plainly_valid_only_where_each_connector_is(cases):
    kind = cases[0][1][0]
    bodies = {name: body for name, (_kind, body) in cases}
    if S.plainly_valid_connectors(bodies, kind):
        assert _all_plain(bodies, kind), bodies
