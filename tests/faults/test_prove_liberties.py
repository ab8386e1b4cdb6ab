"""A CI-sized proof of the planted liberties (slow lane): four cheap, diverse ones, each suite run limited
to the tests the liberty shows in (``exercises``), must pass: CONFORMANT, no MUST Fail or Error. The
whole catalogue runs with ``make prove-liberties``."""

from __future__ import annotations

import pytest

from tests.faults.liberties import LIBERTIES
from tests.faults.liberties_prove import prove_liberties, render_liberties

pytestmark = pytest.mark.slow

#: An event-stream freedom, a status code the documents do not name, a JSON number form, an error status.
CI_SUBSET = ("sse_crlf_line_endings", "batch_submit_200", "embed_exponent_floats", "errors_400_for_schema")


@pytest.mark.timeout(1500)
def test_ci_subset_of_liberties_passes(tmp_path):
    results = prove_liberties([LIBERTIES[name] for name in CI_SUBSET], tmp_path, jobs=1, filtered=True)
    assert all(r.passed for r in results), render_liberties(results)
