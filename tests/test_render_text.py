"""The text plan, byte for byte, over every branch of ``render_text``: the golden files under
tests/golden/ were written by the renderer before it was made faster (per-line escaping, one
json.dumps per value), so a speed-up that changes a byte fails here."""
from __future__ import annotations

from pathlib import Path

import pytest

from reconciler import redact
from reconciler.plan.model import Action, ActionKind, FieldChange, Plan, Unmanaged
from reconciler.plan.render import render_markdown, render_text

GOLDEN = Path(__file__).resolve().parent / "golden"
SECRET = "ghp_render_golden_secret_42"
ENV_VALUE = "value-from-the-ci-env"


def golden_plan() -> Plan:
    C, A = FieldChange, Action
    K = ActionKind
    actions = [
        A(K.CREATE, "new-one", "aw", "airweave", reason="does not exist yet", changes=(
            C("schedule", after={"cron": "0 */6 * * *"}),
            C("scope", after={"repo_name": "company/repo", "branch": "main", "deep": {"a": 1, "b": [1, "two", None]},
                              "empty": {}, "flag": True, "count": 3, "ratio": 0.5, "none": None, 7: "int key"}),
            C("source", after="github"),
            C("target", after="ziel–ü 名前"),  # beyond ASCII: shown as is
            C("description", after="bell\x07 esc\x1b[31m cr\r bidi\u202e tab\t nl\n quote\" back\\"),
            C("literal", after="(sensitive)"),  # a value that reads like the mask is shown as the mask
            C("leak", after=f"prefix {SECRET} suffix"),  # the scrubber's second line of defence
            C("from_env", after=ENV_VALUE),
            C("inside_env", after=f"url://{ENV_VALUE}/x"),
            C("env_in_dict", after={"k": ENV_VALUE}),
            C("credentials", after="(sensitive)", sensitive=True),
            C("token_map", after={"a": "x", "b": "y"}, sensitive=True),
        ), has_credentials=True, source="github", target="ziel"),
        A(K.UPDATE, "chang\x1bed", "aw", "airweave", reason="drifted", changes=(
            C("scope.branch", "main", "release"),
            C("schedule", {"every": 3600}, {"cron": "0 * * * *"}, note="every hour -> at minute 0"),
            C("syncs", None, {"issues": True}, note="issues every day"),
            C("schedule.cron", "0 * * * *", "5 * * * *", note="at minute 5"),
            C("scope.repo_name", "a", "b", forces_replace=True, note="renamed"),
            C("scope.sub", "x", None, reset=True),
            C("scope.gone", "old", None),
            C("scope.added", None, [1, 2]),
            C("password", "p", "q", sensitive=True),
            C("api_key", None, "q", sensitive=True),
            C("mapping", {"z": 1}, {"z": 2, "y": {"q": None}}),
        ), live_id="id-1", has_credentials=True),
        A(K.UPDATE, "adopted", "aw", "airweave", reason="found live", adopt=True, changes=(
            C("target", "t1", "t2"), C("credentials", "(sensitive)", "(sensitive)", sensitive=True),
        ), live_id="id-2", has_credentials=True),
        A(K.REPLACE, "rebuilt", "nango", "nango", reason="source changed", changes=(
            C("source", "github", "gitlab", forces_replace=True),
        ), live_id="id-3", has_credentials=False),
        A(K.DELETE, "gone", "nango", "nango", reason="removed from the manifests", live_id="id-4"),
        A(K.NOOP, "adopt-only", "aw", "airweave", adopt=True, live_id="id-5"),
        A(K.NOOP, "unchanged", "aw", "airweave", live_id="id-6"),
        A(K.UPDATE, "no-rows", "aw", "airweave", reason="x", live_id="id-7"),
    ]
    return Plan("manifests", "digest", {"aw": "airweave", "nango": "nango"}, actions,
                unmanaged=[Unmanaged("aw", f"u{i}", f"hand-made-{i}", marked=i == 0) for i in range(12)]
                + [Unmanaged("nango", "n1", "bidi\u202eone")],
                forgotten=["lost-one", "lost\rtwo"], moved=[("old-name", "new-name"), ("o\x1b", "n")],
                warnings=["a warning", f"one that quotes {SECRET}"])


@pytest.fixture
def registered():
    redact.clear()
    redact.register(SECRET)
    redact.register_env("GOLDEN_VAR", ENV_VALUE)
    yield
    redact.clear()


CASES = {
    "plain": lambda p: render_text(p),
    "colour": lambda p: render_text(p, colour=True),
    "brief": lambda p: render_text(p, detailed=False),
    "markdown": lambda p: render_markdown(p),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_text_plan_is_what_it_was_byte_for_byte(registered, case):
    assert CASES[case](golden_plan()) == (GOLDEN / f"render_{case}.txt").read_text(encoding="utf-8")


def test_a_plan_with_nothing_to_do(registered):
    plan = Plan("m", "d", {"aw": "airweave"}, [Action(ActionKind.NOOP, "same", "aw", "airweave", live_id="i")])
    assert render_text(plan) == ("reconcile plan: 1 provider, 1 connector (1 unchanged)\n\n"
                                 "No changes. Live connectors match the manifests.")


def test_no_secret_and_no_raw_control_character_in_any_rendering(registered):
    for case, render in CASES.items():
        text = render(golden_plan())
        assert SECRET not in text and "(sensitive)" in text, case
        assert ENV_VALUE not in text and ("(from $GOLDEN_VAR)" in text or case == "brief"), case
        assert not any(ch in text for ch in "\x07\r\u202e"), case
        if case != "colour":
            assert "\x1b" not in text, case
