"""The batch service as the app sees it: open on start-up, submit, look up, close on shutdown.

State lives in ``<data_dir>/batches.sqlite3``. Without a configured data directory a temporary one is
made for this run and removed at shutdown: batches then do not survive a restart, and the log says so.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path

from reference_server.batch.runner import BatchRunner
from reference_server.batch.store import DB_NAME, AsyncStore, BatchStore, BatchView, DataDirLock, NewTask
from reference_server.engines.base import ChatEngine
from reference_server.errors import ApiError
from reference_server.limits import KvBudget

__all__ = ["BatchService"]

log = logging.getLogger(__name__)


class BatchService:
    def __init__(
        self,
        data_dir: Path | None,
        engine: ChatEngine,
        kv: KvBudget,
        pool_sizes: Mapping[str, int],
        task_timeout_s: float,
    ) -> None:
        self._data_dir = data_dir
        self._engine = engine
        self._kv = kv
        self._pool_sizes = pool_sizes
        self._task_timeout_s = task_timeout_s
        self._temp_dir: Path | None = None
        self._lock: DataDirLock | None = None
        self._db: AsyncStore | None = None
        self._runner: BatchRunner | None = None

    @property
    def db_path(self) -> Path | None:
        return self._db.store.path if self._db is not None else None

    async def start(self) -> None:
        if self._data_dir is None:
            self._temp_dir = Path(tempfile.mkdtemp(prefix="conform42-data-"))
            log.warning(
                "batch: no data directory configured; batches live in %s and are lost at shutdown",
                self._temp_dir,
            )
        data_dir = self._data_dir or self._temp_dir
        assert data_dir is not None
        data_dir.mkdir(parents=True, exist_ok=True)
        lock = DataDirLock(data_dir)
        lock.acquire()
        try:
            db = AsyncStore(BatchStore(data_dir / DB_NAME))
        except BaseException:
            lock.release()
            raise
        self._lock, self._db = lock, db
        self._runner = BatchRunner(
            db, self._engine, self._kv, self._pool_sizes, task_timeout_s=self._task_timeout_s
        )
        await self._runner.start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.stop()
        if self._db is not None:
            self._db.close()
        if self._lock is not None:
            self._lock.release()
        if self._temp_dir is not None:
            shutil.rmtree(self._temp_dir, ignore_errors=True)
        self._runner = self._db = self._lock = self._temp_dir = None

    def _started(self) -> tuple[AsyncStore, BatchRunner]:
        if self._db is None or self._runner is None:
            # Only reachable when the app runs without its lifespan (an embedding that skipped start-up).
            raise ApiError(
                503, "The batch service is not running", "service_unavailable", headers={"Retry-After": "30"}
            )
        return self._db, self._runner

    async def submit(
        self, owner: str, tier: str, model: str, max_tokens: int, tasks: Sequence[NewTask]
    ) -> str:
        """Store the batch (committed before this returns) and wake the workers; returns its id."""
        db, runner = self._started()
        batch_id = f"batch_{uuid.uuid4().hex}"
        await db.call(db.store.create, batch_id, owner, tier, model, max_tokens, tasks)
        runner.notify()
        return batch_id

    async def view(self, batch_id: str, owner: str) -> BatchView | None:
        db, _ = self._started()
        return await db.call(db.store.view, batch_id, owner)
