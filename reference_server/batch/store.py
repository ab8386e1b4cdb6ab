"""Durable batch state: one SQLite file (WAL) that outlives the server process.

A task moves ``pending -> running -> completed | failed``. A worker *claims* a task by setting it to
``running`` with its run's lease id, in one transaction; it writes the result and the final state in
another, which only succeeds while the task is still ``running`` under that lease. A task's result
therefore lands at most once, and ``completions`` (incremented by that same statement) must end at 1.

Only one process may use a data directory at a time (:class:`DataDirLock`, an ``flock`` the kernel
drops when the process dies, SIGKILL included). So at start-up every task still marked ``running`` was
abandoned by a dead process and is put back to ``pending`` (:meth:`BatchStore.requeue_abandoned`);
``attempts`` keeps counting, which is how a test sees that a task was cut off and run again.

Synchronous and not thread-safe on purpose: the batch service calls it from one dedicated thread.
"""

from __future__ import annotations

import asyncio
import fcntl
import functools
import json
import os
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

__all__ = ["AsyncStore", "BatchStore", "BatchView", "ClaimedTask", "DataDirBusy", "DataDirLock", "NewTask"]

P = ParamSpec("P")
T = TypeVar("T")

SCHEMA_VERSION = 1
DB_NAME = "batches.sqlite3"
LOCK_NAME = "batches.lock"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS batches (
    batch_id   TEXT PRIMARY KEY,
    owner      TEXT NOT NULL,
    tier       TEXT NOT NULL,
    model      TEXT NOT NULL,
    max_tokens INTEGER NOT NULL,
    total      INTEGER NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS tasks (
    batch_id      TEXT NOT NULL REFERENCES batches (batch_id),
    seq           INTEGER NOT NULL,
    task_id       TEXT NOT NULL,
    messages      TEXT NOT NULL,
    state         TEXT NOT NULL DEFAULT 'pending'
                  CHECK (state IN ('pending', 'running', 'completed', 'failed')),
    attempts      INTEGER NOT NULL DEFAULT 0,
    completions   INTEGER NOT NULL DEFAULT 0,
    lease         TEXT,
    claimed_at    REAL,
    finished_at   REAL,
    content       TEXT,
    error_message TEXT,
    error_type    TEXT,
    PRIMARY KEY (batch_id, seq),
    UNIQUE (batch_id, task_id)
);
CREATE INDEX IF NOT EXISTS tasks_by_state ON tasks (state, batch_id, seq);
CREATE INDEX IF NOT EXISTS batches_by_owner ON batches (owner);
"""


class DataDirBusy(RuntimeError):
    """Another live process holds the data directory."""


class DataDirLock:
    """An exclusive ``flock`` on ``<data_dir>/batches.lock`` for as long as the server runs."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise DataDirBusy(
                f"{self.path.parent} is in use by another reference server process; give each server its "
                "own --data-dir"
            ) from None
        self._fd = fd

    @classmethod
    def check(cls, data_dir: Path) -> None:
        """Fail now (DataDirBusy, OSError) if the server could not take ``data_dir`` at start-up."""
        data_dir.mkdir(parents=True, exist_ok=True)
        lock = cls(data_dir)
        lock.acquire()
        lock.release()

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


@dataclass(frozen=True)
class NewTask:
    task_id: str
    messages: list[dict[str, str]]


@dataclass(frozen=True)
class ClaimedTask:
    batch_id: str
    seq: int
    task_id: str
    owner: str
    model: str
    max_tokens: int
    messages: list[dict[str, str]]


@dataclass(frozen=True)
class BatchView:
    """What GET /v1/batch/{batch_id} shows; ``completed`` counts finished tasks, failed ones included."""

    batch_id: str
    status: str
    total: int
    completed: int
    failed: int
    results: dict[str, dict[str, Any]]

    def as_json(self) -> dict[str, Any]:
        return {
            "batch_id": self.batch_id,
            "status": self.status,
            "total": self.total,
            "completed": self.completed,
            "failed": self.failed,
            "results": self.results,
        }


class BatchStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        # isolation_level=None: no implicit transactions; every write below says BEGIN IMMEDIATE itself,
        # so the write lock is taken up front instead of on a read-to-write upgrade that can fail.
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.row_factory = sqlite3.Row
        mode = self._db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise RuntimeError(
                f"{path}: SQLite refused WAL mode (got {mode}); is it on a network filesystem?"
            )
        # FULL: a commit is on disk when it returns, so an accepted batch survives a power cut too,
        # not only a process crash (NORMAL would be enough for SIGKILL alone).
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.execute("PRAGMA busy_timeout=5000")
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version not in (0, SCHEMA_VERSION):
            raise RuntimeError(f"{path}: batch schema version {version}, this server knows {SCHEMA_VERSION}")
        with self._tx():
            # One statement at a time: executescript() would COMMIT the transaction first.
            for statement in filter(str.strip, _SCHEMA.split(";")):
                self._db.execute(statement)
            self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    @contextmanager
    def _tx(self) -> Iterator[None]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def close(self) -> None:
        self._db.close()

    # ------------------------------------------------------------------------------------- writes

    def requeue_abandoned(self) -> int:
        """Put every ``running`` task back to ``pending``; only valid while holding the data-dir lock."""
        with self._tx():
            cursor = self._db.execute(
                "UPDATE tasks SET state = 'pending', lease = NULL, claimed_at = NULL WHERE state = 'running'"
            )
        return cursor.rowcount

    def create(
        self, batch_id: str, owner: str, tier: str, model: str, max_tokens: int, tasks: Sequence[NewTask]
    ) -> None:
        """Store a batch and all its tasks in one transaction: all of it is accepted, or none."""
        with self._tx():
            self._db.execute(
                "INSERT INTO batches (batch_id, owner, tier, model, max_tokens, total, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (batch_id, owner, tier, model, max_tokens, len(tasks), time.time()),
            )
            self._db.executemany(
                "INSERT INTO tasks (batch_id, seq, task_id, messages) VALUES (?, ?, ?, ?)",
                [(batch_id, seq, t.task_id, json.dumps(t.messages)) for seq, t in enumerate(tasks)],
            )

    def claim(self, owner: str, limit: int, lease: str) -> list[ClaimedTask]:
        """Mark up to ``limit`` of ``owner``'s pending tasks running under ``lease``, oldest batch first."""
        with self._tx():
            rows = self._db.execute(
                "SELECT t.batch_id, t.seq, t.task_id, t.messages, b.model, b.max_tokens "
                "FROM tasks t JOIN batches b ON b.batch_id = t.batch_id "
                "WHERE t.state = 'pending' AND b.owner = ? ORDER BY b.rowid, t.seq LIMIT ?",
                (owner, limit),
            ).fetchall()
            now = time.time()
            self._db.executemany(
                "UPDATE tasks SET state = 'running', lease = ?, claimed_at = ?, attempts = attempts + 1 "
                "WHERE batch_id = ? AND seq = ? AND state = 'pending'",
                [(lease, now, r["batch_id"], r["seq"]) for r in rows],
            )
        return [
            ClaimedTask(
                r["batch_id"],
                r["seq"],
                r["task_id"],
                owner,
                r["model"],
                r["max_tokens"],
                json.loads(r["messages"]),
            )
            for r in rows
        ]

    def finish(
        self, task: ClaimedTask, lease: str, content: str | None, error: tuple[str, str] | None = None
    ) -> bool:
        """Record a task's result and final state at once; False if the lease was lost (nothing written)."""
        state = "failed" if error is not None else "completed"
        message, error_type = error if error is not None else (None, None)
        with self._tx():
            cursor = self._db.execute(
                "UPDATE tasks SET state = ?, content = ?, error_message = ?, error_type = ?, "
                "finished_at = ?, completions = completions + 1, lease = NULL "
                "WHERE batch_id = ? AND seq = ? AND state = 'running' AND lease = ?",
                (state, content, message, error_type, time.time(), task.batch_id, task.seq, lease),
            )
        return cursor.rowcount == 1

    # -------------------------------------------------------------------------------------- reads

    def owners_with_pending(self) -> list[tuple[str, str]]:
        """``(owner, tier)`` of every key that has a pending task."""
        rows = self._db.execute(
            "SELECT DISTINCT b.owner, b.tier FROM tasks t JOIN batches b ON b.batch_id = t.batch_id "
            "WHERE t.state = 'pending'"
        ).fetchall()
        return [(r["owner"], r["tier"]) for r in rows]

    def view(self, batch_id: str, owner: str) -> BatchView | None:
        """The batch as its owner sees it; None when unknown *or* owned by another key (both are 404)."""
        batch = self._db.execute(
            "SELECT total FROM batches WHERE batch_id = ? AND owner = ?", (batch_id, owner)
        ).fetchone()
        if batch is None:
            return None
        rows = self._db.execute(
            "SELECT task_id, state, attempts, content, error_message, error_type FROM tasks "
            "WHERE batch_id = ? ORDER BY seq",
            (batch_id,),
        ).fetchall()
        results: dict[str, dict[str, Any]] = {}
        failed = 0
        started = False
        for r in rows:
            started = started or r["attempts"] > 0
            if r["state"] == "completed":
                results[r["task_id"]] = {"content": r["content"], "status": "completed"}
            elif r["state"] == "failed":
                failed += 1
                results[r["task_id"]] = {
                    "content": None,
                    "status": "failed",
                    "error": {"message": r["error_message"], "type": r["error_type"]},
                }
        total: int = batch["total"]
        if len(results) == total:
            status = "failed" if failed else "completed"
        else:
            # "Ever claimed" rather than "running now": a task requeued after a restart must not send
            # a batch back from running to pending.
            status = "running" if started else "pending"
        return BatchView(batch_id, status, total, len(results), failed, results)


class AsyncStore:
    """The store for async code: every call runs on one dedicated thread, so SQLite's fsyncs never block
    the event loop and the connection is never used from two threads at once."""

    def __init__(self, store: BatchStore) -> None:
        self.store = store
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="batch-store")

    async def call(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._thread, functools.partial(fn, *args, **kwargs))

    def close(self) -> None:
        # Waits for a write in progress: it finishes (committed or rolled back) before the file closes.
        self._thread.shutdown(wait=True)
        self.store.close()
