"""The SQLite batch store on its own: claims, leases, requeue, the one-owner lock."""

from __future__ import annotations

import pytest

from reference_server.batch import DataDirBusy, DataDirLock, NewTask
from reference_server.batch.store import BatchStore

MESSAGES = [{"role": "user", "content": "hi"}]


@pytest.fixture
def store(tmp_path):
    s = BatchStore(tmp_path / "batches.sqlite3")
    s.create("b1", "key-a", "pro", "42-logic", 8, [NewTask(f"t{i}", MESSAGES) for i in range(3)])
    yield s
    s.close()


def test_database_is_in_wal_mode(store):
    assert store._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_claim_takes_pending_tasks_in_order_up_to_the_limit(store):
    claimed = store.claim("key-a", 2, "lease-1")
    assert [t.task_id for t in claimed] == ["t0", "t1"]
    assert [t.task_id for t in store.claim("key-a", 5, "lease-1")] == ["t2"]
    assert store.claim("key-a", 5, "lease-1") == []
    assert store.owners_with_pending() == []


def test_claim_only_takes_the_owners_tasks(store):
    assert store.claim("key-b", 5, "lease-1") == []
    assert store.owners_with_pending() == [("key-a", "pro")]


def test_a_result_is_written_once_and_only_under_its_lease(store):
    (task,) = store.claim("key-a", 1, "lease-1")
    assert not store.finish(task, "other-lease", "stale")
    assert store.finish(task, "lease-1", "first")
    assert not store.finish(task, "lease-1", "second")
    view = store.view("b1", "key-a")
    assert view is not None
    assert view.results == {"t0": {"content": "first", "status": "completed"}}
    (completions,) = store._db.execute("SELECT completions FROM tasks WHERE task_id = 't0'").fetchone()
    assert completions == 1


def test_requeue_puts_abandoned_tasks_back_and_keeps_counting_attempts(store):
    (task,) = store.claim("key-a", 1, "dead-run")
    assert store.requeue_abandoned() == 1
    assert not store.finish(task, "dead-run", "late")  # the dead run's lease is gone
    (again,) = store.claim("key-a", 1, "new-run")
    assert again.task_id == task.task_id
    assert store.finish(again, "new-run", "done")
    row = store._db.execute("SELECT attempts, completions FROM tasks WHERE task_id = 't0'").fetchone()
    assert tuple(row) == (2, 1)


def test_status_goes_pending_running_completed_and_never_back(store):
    assert store.view("b1", "key-a").status == "pending"
    claimed = store.claim("key-a", 1, "run")
    assert store.view("b1", "key-a").status == "running"
    store.requeue_abandoned()  # a restart before anything finished: still running, not pending
    assert store.view("b1", "key-a").status == "running"
    for task in store.claim("key-a", 3, "run2"):
        store.finish(task, "run2", "ok")
    assert claimed
    view = store.view("b1", "key-a")
    assert (view.status, view.completed, view.total) == ("completed", 3, 3)


def test_a_batch_with_a_failed_task_ends_failed(store):
    tasks = store.claim("key-a", 3, "run")
    store.finish(tasks[0], "run", None, ("engine down", "service_unavailable"))
    for task in tasks[1:]:
        store.finish(task, "run", "ok")
    view = store.view("b1", "key-a")
    assert (view.status, view.completed, view.failed) == ("failed", 3, 1)
    assert view.results["t0"] == {
        "content": None,
        "status": "failed",
        "error": {"message": "engine down", "type": "service_unavailable"},
    }


def test_view_hides_another_owners_batch(store):
    assert store.view("b1", "key-b") is None
    assert store.view("nope", "key-a") is None


def test_data_dir_lock_admits_one_holder(tmp_path):
    lock = DataDirLock(tmp_path)
    lock.acquire()
    try:
        with pytest.raises(DataDirBusy, match="in use by another"):
            DataDirLock.check(tmp_path)
    finally:
        lock.release()
    DataDirLock.check(tmp_path)  # free again
