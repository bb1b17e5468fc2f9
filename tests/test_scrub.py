"""The scrubber skips its regex when a text holds none of the registered values (a substring search
per "probe" first, in the bytes for what is written as UTF-8): it must still mask exactly what one
regex pass over every registered form masks, and no secret may reach the state file, however it
got into an entry."""
from __future__ import annotations

import base64
import json
import re
from urllib.parse import quote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler import redact
from reconciler.state.file import FileBackend
from reconciler.state.model import State, StateEntry


@pytest.fixture(autouse=True)
def clean_registry():
    redact.clear()
    yield
    redact.clear()


def _one_pass(text: str) -> str:
    """What scrub did before the probes: every form, longest first, in one regex."""
    alts = sorted(redact._forms, key=len, reverse=True)
    return re.sub("|".join(re.escape(a) for a in alts), redact.MASK, text)


ALPHABET = "ab\"\\/+= é名\n"
secret_values = st.text(ALPHABET, min_size=redact.MIN_SECRET_LENGTH, max_size=8)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.lists(secret_values, min_size=1, max_size=12), st.lists(st.integers(0, 200), max_size=12),
       st.text(ALPHABET + "xyz", max_size=30))
def test_scrub_masks_what_one_regex_pass_over_every_form_masks(values, picks, filler):
    redact.clear()  # per example (the fixture runs once per test)
    for value in values:
        redact.register(value)
    forms = sorted(redact._forms)
    # a text made of forms (whole, overlapping, cut short) and filler around them
    parts = [filler]
    for i in picks:
        form = forms[i % len(forms)]
        parts += [form if i % 3 else form[: max(1, len(form) - 1)], filler[: i % 7]]
    text = "".join(parts)
    expected = _one_pass(text)
    assert redact.scrub(text) == expected
    assert redact.scrub_utf8(text.encode()) == expected.encode()
    clean = filler.replace("a", "x")
    assert redact.scrub(clean) == _one_pass(clean)
    for form in forms:  # each form alone: found by its own probe, or by one inside it
        alone = f"{clean}{form}{clean}"
        assert redact.scrub(alone) == _one_pass(alone) != alone
        assert redact.scrub_utf8(alone.encode()) == _one_pass(alone).encode()


def test_more_forms_than_probes_go_straight_to_the_regex():
    for i in range(redact._MAX_PROBES):
        redact.register(f"token-number-{i:03d}-of-many")
    assert redact._compile()[1] is None
    text = "x token-number-007-of-many y " + base64.b64encode(b"token-number-031-of-many").decode()
    assert redact.scrub(text) == "x (sensitive) y (sensitive)" == redact.scrub_utf8(text.encode()).decode()


def test_a_value_registered_after_a_scrub_is_masked_by_the_next():
    redact.register("first-secret")
    assert redact.scrub("a second-secret b") == "a second-secret b"
    redact.register("second-secret")
    assert redact.scrub("a second-secret b") == "a (sensitive) b"
    assert redact.scrub_utf8(b"a second-secret b") == b"a (sensitive) b"


def _forms_in(data: bytes, value: str) -> list[str]:
    forms = {value, quote(value, safe=""), json.dumps(value)[1:-1], json.dumps(value, ensure_ascii=False)[1:-1],
             base64.b64encode(value.encode()).decode().rstrip("=")}
    return [f for f in forms if f.encode() in data]


SECRETS = ["ghp_plainSecretToken0001", 'quote"and\\slash-ünïcode-名前', "late-registered-secret"]


def _leaky_entry(name: str) -> StateEntry:
    """An entry carrying every secret in every form a platform could echo one back in."""
    carried = {}
    for i, value in enumerate(SECRETS):
        carried[f"raw{i}"] = value
        carried[f"b64_{i}"] = base64.b64encode(value.encode()).decode()
        carried[f"url{i}"] = "https://host/?t=" + quote(value, safe="")
        carried[f"json{i}"] = json.dumps({"echo": value})
    return StateEntry(name=name, provider="p", type="airweave", id=f"id-{SECRETS[0]}", version=SECRETS[1],
                      fields={"scope": carried}, last_applied={"description": f"x {SECRETS[2]} y"})


def _assert_clean(data: bytes) -> None:
    assert data and b"(sensitive)" in data
    for value in SECRETS:
        assert not _forms_in(data, value), (value, _forms_in(data, value))


def test_no_secret_reaches_the_state_file_or_its_journal(tmp_path):
    redact.register(SECRETS[0])
    redact.register(SECRETS[1])
    backend = FileBackend(tmp_path / "state.json")
    backend.load()
    backend.put(_leaky_entry("a"))
    journal = backend.journal.read_bytes()
    assert _forms_in(journal, SECRETS[2])  # not registered yet: the journal keeps it (it is not a secret yet)
    for value in SECRETS[:2]:
        assert not _forms_in(journal, value)
    redact.register(SECRETS[2])  # registered once the entry is in memory: the compaction masks it too
    backend.flush()
    assert not backend.journal.exists()
    _assert_clean((tmp_path / "state.json").read_bytes())
    # and again over the old file (kept as the backup, itself clean) with a second entry
    backend = FileBackend(tmp_path / "state.json")
    backend.load()
    backend.put(_leaky_entry("b"))
    _assert_clean(backend.journal.read_bytes())
    backend.flush()
    _assert_clean((tmp_path / "state.json").read_bytes())
    _assert_clean((tmp_path / "state.json.backup").read_bytes())


@pytest.mark.parametrize("value", SECRETS)
def test_each_secret_alone_is_masked_in_the_file(tmp_path, value):
    """One form in one field (the other tests carry many: one found would hide another missed)."""
    redact.register(value)
    backend = FileBackend(tmp_path / "state.json")
    backend.load()
    backend.put(StateEntry(name="a", provider="p", type="t", id="1", fields={"echo": f"<{value}>"}))
    backend.flush()
    data = (tmp_path / "state.json").read_bytes()
    assert value.encode() not in data and b'"<(sensitive)>"' in data


def test_no_secret_reaches_a_pushed_state(tmp_path):
    for value in SECRETS:
        redact.register(value)
    backend = FileBackend(tmp_path / "state.json")
    backend.replace_all(State(entries={"a": _leaky_entry("a")}))
    _assert_clean((tmp_path / "state.json").read_bytes())


def test_with_no_secret_the_state_file_is_the_text_unchanged(tmp_path):
    redact.register("a-secret-nowhere-in-the-state")
    backend = FileBackend(tmp_path / "state.json")
    backend.load()
    entry = StateEntry(name="ü", provider="p", type="t", id="1", fields={"k": "名前 \"q\""})
    backend.put(entry)
    backend.flush()
    from reconciler.state.file import document_bytes

    assert (tmp_path / "state.json").read_bytes() == document_bytes(backend._state.to_json())


def test_a_secret_that_reads_like_a_record_end_never_takes_the_newline(tmp_path):
    """The journal's newline is added after the scrub (as before the bytes path): a mask that took
    it would glue the record to the next one."""
    redact.register('t"}\n')  # a put record ends with "op":"put"} and the newline
    backend = FileBackend(tmp_path / "state.json")
    backend.load()
    backend.put(StateEntry(name="a", provider="p", type="t", id="1"))
    backend.put(StateEntry(name="b", provider="p", type="t", id="2"))
    assert backend.journal.read_bytes().count(b"\n") == 2
    assert sorted(FileBackend(tmp_path / "state.json").load().entries) == ["a", "b"]
