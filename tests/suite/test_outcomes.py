"""Per-requirement aggregation (worst test wins) and the verdict rules with their exit codes."""

from __future__ import annotations

import pytest

from suite.outcomes import (
    EXIT_CONFORMANT,
    EXIT_NON_CONFORMANT,
    EXIT_SUITE_ERROR,
    Outcome,
    TestResult,
    aggregate,
    decide_verdict,
    worst,
)

P, F, E, S, D = Outcome.PASS, Outcome.FAIL, Outcome.ERROR, Outcome.SKIP, Outcome.DISABLED


@pytest.mark.parametrize(
    "outcomes, expected",
    [
        ([P, F, E], F),
        ([P, E], E),
        ([S, P], P),
        ([D, S], S),
        ([D], D),
        ([], Outcome.NOT_TESTED),
    ],
    ids=[
        "fail-beats-error",
        "error-beats-pass",
        "pass-beats-skip",
        "skip-beats-disabled",
        "disabled",
        "none-is-not-tested",
    ],
)
def test_worst_outcome_order(outcomes, expected):
    assert worst(outcomes) is expected


def test_test_result_keeps_the_worst_phase_and_its_reason():
    test = TestResult("t", ("AUTH-001",))
    test.record(P)
    test.record(E, reason="teardown broke")
    test.record(S, reason="later skip does not hide the error")
    assert (test.outcome, test.reason) == (E, "teardown broke")


def _tests(**outcomes: Outcome) -> list[TestResult]:
    """One test per requirement: _tests(AUTH_001=P) -> a passing test of AUTH-001."""
    results = []
    for name, outcome in outcomes.items():
        test = TestResult(f"test_{name}", (name.replace("_", "-"),))
        test.record(outcome)
        results.append(test)
    return results


def _verdict(catalogue, **outcomes: Outcome):
    # AUTH-001, AUTH-002 are MUST; AUTH-003 is SHOULD (42ai profile).
    selected = [catalogue[i] for i in ("AUTH-001", "AUTH-002", "AUTH-003")]
    return decide_verdict(aggregate(selected, _tests(**outcomes)))


def test_a_requirement_takes_its_worst_test(catalogue):
    tests = [TestResult("a", ("AUTH-001",)), TestResult("b", ("AUTH-001", "AUTH-002"))]
    tests[0].record(P)
    tests[1].record(F)
    results = aggregate([catalogue["AUTH-001"], catalogue["AUTH-002"], catalogue["AUTH-003"]], tests)
    assert [r.outcome for r in results] == [F, F, Outcome.NOT_TESTED]


def test_all_must_pass_is_conformant_even_if_a_should_fails(catalogue):
    verdict = _verdict(catalogue, AUTH_001=P, AUTH_002=P, AUTH_003=F)
    assert (verdict.label, verdict.exit_code) == ("CONFORMANT", EXIT_CONFORMANT)


def test_a_failed_must_is_non_conformant(catalogue):
    verdict = _verdict(catalogue, AUTH_001=P, AUTH_002=F)
    assert (verdict.label, verdict.exit_code) == ("NON-CONFORMANT", EXIT_NON_CONFORMANT)
    assert "AUTH-002" in verdict.reason


def test_a_failed_must_wins_over_an_error(catalogue):
    assert _verdict(catalogue, AUTH_001=E, AUTH_002=F).exit_code == EXIT_NON_CONFORMANT


def test_an_error_is_inconclusive_never_a_fail(catalogue):
    verdict = _verdict(catalogue, AUTH_001=P, AUTH_002=E)
    assert (verdict.label, verdict.exit_code) == ("INCONCLUSIVE", EXIT_SUITE_ERROR)


def test_an_error_in_a_should_is_inconclusive_too(catalogue):
    assert _verdict(catalogue, AUTH_001=P, AUTH_002=P, AUTH_003=E).label == "INCONCLUSIVE"


def test_disabled_must_is_conformant_and_counted_in_the_verdict_line(catalogue):
    verdict = _verdict(catalogue, AUTH_001=P, AUTH_002=D)
    assert verdict.label == "CONFORMANT"
    assert verdict.line == "CONFORMANT (1 MUST pass; 1 MUST disabled)"


def test_nothing_judged_is_inconclusive(catalogue):
    verdict = _verdict(catalogue, AUTH_001=D, AUTH_002=S)
    assert (verdict.label, verdict.exit_code) == ("INCONCLUSIVE", EXIT_SUITE_ERROR)


def test_session_error_makes_an_otherwise_passing_run_inconclusive(catalogue):
    selected = [catalogue["AUTH-001"]]
    verdict = decide_verdict(aggregate(selected, _tests(AUTH_001=P)), session_error="interrupted")
    assert (verdict.label, verdict.reason) == ("INCONCLUSIVE", "interrupted")


def test_tests_of_unselected_requirements_do_not_count(catalogue):
    results = aggregate([catalogue["AUTH-001"]], _tests(AUTH_001=P, AUTH_002=F))
    assert [r.requirement.id for r in results] == ["AUTH-001"]
    assert decide_verdict(results).label == "CONFORMANT"


def test_a_should_gate_makes_a_failed_should_non_conformant(catalogue):
    selected = [catalogue[i] for i in ("AUTH-001", "AUTH-002", "AUTH-003")]
    results = aggregate(selected, _tests(AUTH_001=P, AUTH_002=P, AUTH_003=F))
    verdict = decide_verdict(results, gate="should")
    assert (verdict.label, verdict.exit_code) == ("NON-CONFORMANT", EXIT_NON_CONFORMANT)
    assert "AUTH-003" in verdict.reason
    assert decide_verdict(results, gate="must").label == "CONFORMANT"


def test_an_unknown_gate_is_refused(catalogue):
    with pytest.raises(ValueError, match="gate"):
        decide_verdict([], gate="sometimes")


def test_a_skipped_forceable_must_makes_the_run_inconclusive() -> None:
    from suite.catalogue import load_catalogue

    catalogue = load_catalogue()
    selected = [catalogue["AUTH-001"], catalogue["LIMIT-001"]]
    results = aggregate(
        selected,
        [TestResult("a", ("AUTH-001",), Outcome.PASS), TestResult("b", ("LIMIT-001",), Outcome.SKIP)],
    )
    verdict = decide_verdict(results)
    assert verdict.label == "INCONCLUSIVE" and verdict.exit_code == 2
    assert "LIMIT-001" in verdict.reason
    accepted = decide_verdict(results, accepted_skips=("LIMIT-001",))
    assert accepted.label == "CONFORMANT"
    assert "accepted" in accepted.reason and "LIMIT-001" in accepted.reason


def test_a_skipped_unforceable_must_is_listed_but_does_not_block() -> None:
    from suite.catalogue import load_catalogue

    catalogue = load_catalogue()
    assert catalogue["LIMIT-011"].unforceable
    selected = [catalogue["AUTH-001"], catalogue["LIMIT-011"]]
    results = aggregate(
        selected,
        [TestResult("a", ("AUTH-001",), Outcome.PASS), TestResult("b", ("LIMIT-011",), Outcome.SKIP)],
    )
    verdict = decide_verdict(results)
    assert verdict.label == "CONFORMANT"
    assert "LIMIT-011" in verdict.reason
