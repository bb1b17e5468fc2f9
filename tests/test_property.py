"""Property: whatever sequence of manifest edits (add, remove, rename connectors, change scope values,
switch the replace-forcing field, rotate credentials), `apply` converges: afterwards live state
has no duplicate and nothing lost or stale, and `plan --detailed-exitcode` exits 0.

One emulator per platform lives across all examples, so each example starts from where the last
one left the platform and the state: hypothesis explores transitions, not just fresh creates.
Bounded: 8 examples by default (``RECONCILE_FULL_MATRIX=1``: 25, on two platforms).
"""
from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from e2e_helpers import Project, Spec, start

FULL = os.environ.get("RECONCILE_FULL_MATRIX") == "1"
POOL = [f"conn-{c}" for c in "abcdefghij"]

specs = st.builds(Spec, scope=st.sampled_from(["v1", "v2", "v3"]), alt=st.booleans(),
                  token=st.sampled_from(["TOK_A", "TOK_B"]))
manifests = st.dictionaries(st.sampled_from(POOL), specs, max_size=6)


@pytest.mark.parametrize("platform", ["connectors-api", "nango"] if FULL else ["connectors-api"])
def test_random_edits_then_apply_converge(tmp_path_factory, emulator, platform):
    emu = start(emulator, platform)
    project = Project(tmp_path_factory.mktemp("prop") / "m", emu, platform)

    @settings(max_examples=25 if FULL else 8, deadline=None, derandomize=not FULL,
              suppress_health_check=list(HealthCheck))
    @given(manifests)
    def check(desired: dict[str, Spec]) -> None:
        project.write(desired)
        r = project.apply("--parallelism", "4")
        assert r.code == 0, r.output
        project.assert_converged()

    check()
    project.assert_no_secret_written()
