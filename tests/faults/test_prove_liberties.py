"""A CI-sized proof of the planted liberties (slow lane): cheap, diverse ones, each suite run limited to
the tests the liberty shows in (``exercises``), must pass: CONFORMANT, no MUST Fail or Error. Among them
the ones that once gave false failures: a 201 token answer, a busy 503 now and then, the limits judged
through nginx (where installed) and through the slow Python gateway, whose run accepts the Skip of the
limits no client can judge through it (``accepts``; README, "When a limit cannot be judged through your
proxy") and must show no MUST Fail or Error. The whole catalogue runs with ``make prove-liberties``."""

from __future__ import annotations

import pytest

from tests.faults.liberties import LIBERTIES
from tests.faults.liberties_prove import prove_liberties, render_liberties
from tests.support.nginx_proxy import nginx_binary

pytestmark = pytest.mark.slow

#: An event-stream freedom, status codes the documents do not name, a JSON number form, an error status,
#: a busy server, and the limits through nginx and through the slow gateway.
CI_SUBSET = (
    "sse_crlf_line_endings",
    "batch_submit_200",
    "auth_token_201_created",
    "embed_exponent_floats",
    "errors_400_for_schema",
    "limits_503_now_and_then",
    "path_nginx_default",
    "path_slow_proxy",
)


@pytest.mark.timeout(2400)
def test_ci_subset_of_liberties_passes(tmp_path):
    names = [n for n in CI_SUBSET if LIBERTIES[n].intermediary != "nginx" or nginx_binary() is not None]
    results = prove_liberties([LIBERTIES[name] for name in names], tmp_path, jobs=1, filtered=True)
    assert all(r.passed for r in results), render_liberties(results)
