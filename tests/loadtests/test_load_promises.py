"""The promise checks as pure functions: over-admission sweep, Retry-After, 5xx, batch results."""

from __future__ import annotations

from loadtests.promises import batch_violation, find_overlaps, status_violation


def test_sequential_requests_of_a_free_key_do_not_overlap():
    assert find_overlaps([(0.0, 1.0), (1.0, 2.0), (2.5, 3.0)], limit=1) is None


def test_two_requests_in_flight_break_the_free_limit():
    found = find_overlaps([(0.0, 1.0), (0.5, 2.0)], limit=1)
    assert found is not None
    assert found.max_in_flight == 2
    assert found.episodes == 1
    assert abs(found.seconds_over - 0.5) < 1e-9


def test_three_at_once_are_allowed_for_pro_but_four_are_not():
    three = [(0.0, 1.0), (0.1, 1.0), (0.2, 1.0)]
    assert find_overlaps(three, limit=3) is None
    found = find_overlaps([*three, (0.3, 0.4)], limit=3)
    assert found is not None and found.max_in_flight == 4


def test_empty_intervals_are_ignored():
    # A shrunk interval that vanished (shorter than the tolerance) cannot overlap anything.
    assert find_overlaps([(0.0, 1.0), (0.5, 0.5), (0.7, 0.6)], limit=1) is None


def test_429_needs_retry_after_5_in_42ai():
    assert status_violation(429, "5", "free", "42ai", "x") is None
    missing = status_violation(429, None, "free", "42ai", "x")
    assert missing is not None and missing.requirement == "LIMIT-004"
    wrong = status_violation(429, "10", "pro", "42ai", "x")
    assert wrong is not None and wrong.kind == "429-retry-after"


def test_fortytwo_429_needs_a_retry_after_of_any_value():
    assert status_violation(429, "10", "free", "fortytwo", "x") is None
    found = status_violation(429, None, "free", "fortytwo", "x")
    assert found is not None and found.requirement == "LIMIT-005"


def test_429_for_the_unlimited_tier_is_a_violation():
    found = status_violation(429, "5", "internal", "42ai", "x")
    assert found is not None and found.kind == "429-unlimited-tier"


def test_503_needs_retry_after_30():
    assert status_violation(503, "30", "pro", "42ai", "x") is None
    found = status_violation(503, "5", "pro", "42ai", "x")
    assert found is not None and found.requirement == "LIMIT-011"


def test_5xx_other_than_503_is_a_violation_and_4xx_is_not():
    found = status_violation(500, None, "pro", "42ai", "x")
    assert found is not None and found.kind == "server-error"
    assert status_violation(404, None, "pro", "42ai", "x") is None
    assert status_violation(200, None, "pro", "42ai", "x") is None


def test_batch_results_must_match_the_tasks():
    ok = {
        "status": "completed",
        "total": 2,
        "completed": 2,
        "results": {"t1": {"content": "a"}, "t2": {"content": "b"}},
    }
    assert batch_violation(["t1", "t2"], ok, "pro") is None
    missing = {**ok, "results": {"t1": {"content": "a"}}}
    found = batch_violation(["t1", "t2"], missing, "pro")
    assert found is not None and found.requirement == "BATCH-008" and "t2" in found.message


def test_batch_result_without_string_content_is_a_mismatch():
    body = {"total": 1, "completed": 1, "results": {"t1": {"content": None}}}
    found = batch_violation(["t1"], body, "pro")
    assert found is not None and found.kind == "batch-mismatch"


def test_batch_completed_count_must_equal_total():
    body = {"total": 2, "completed": 1, "results": {"t1": {"content": "a"}, "t2": {"content": "b"}}}
    found = batch_violation(["t1", "t2"], body, "pro")
    assert found is not None and found.requirement == "BATCH-009"
