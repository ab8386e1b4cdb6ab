"""The batch workers: claim pending tasks per API key, run them on the chat engine, store the results.

Concurrency: each key gets its own pool of batch workers, as many as its tier's concurrency (free 1,
pro 3; the unlimited internal tier a fixed cap). These are separate from the interactive per-key slots
of limits.py: background work is queued here and never makes an interactive request of the same key
answer 429. It does share the KV-cache budget, because it really occupies the engine; a task that finds
no room (or the engine restarting: any 503) waits and tries again instead of failing.

One dispatcher coroutine fills free worker places from the store whenever a batch arrives or a task
ends (plus a slow poll as a safety net). A cancelled worker (server stopping, or killed) leaves its task
``running`` in the store, to be requeued at the next start (store.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Mapping

from reference_server.batch.completion import complete_text, kv_tokens_needed
from reference_server.batch.store import AsyncStore, ClaimedTask
from reference_server.engines.base import ChatEngine
from reference_server.errors import ApiError
from reference_server.limits import KvBudget

__all__ = ["BatchRunner"]

log = logging.getLogger(__name__)


class BatchRunner:
    def __init__(
        self,
        db: AsyncStore,
        engine: ChatEngine,
        kv: KvBudget,
        pool_sizes: Mapping[str, int],
        *,
        task_timeout_s: float,
        retry_s: float = 1.0,
        poll_s: float = 2.0,
    ) -> None:
        self._db = db
        self._engine = engine
        self._kv = kv
        self._pool_sizes = dict(pool_sizes)
        self._task_timeout_s = task_timeout_s
        self._retry_s = retry_s
        self._poll_s = poll_s
        #: This run's lease: a result is only written for a task this run claimed.
        self.lease = uuid.uuid4().hex
        self._running: dict[str, int] = {}
        self._workers: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()
        self._dispatcher: asyncio.Task[None] | None = None

    async def start(self) -> int:
        """Requeue what a previous process left running, then start dispatching; returns the requeued."""
        requeued = await self._db.call(self._db.store.requeue_abandoned)
        if requeued:
            log.warning("batch: requeued %d task(s) left running by a previous server process", requeued)
        self._dispatcher = asyncio.create_task(self._dispatch(), name="batch-dispatcher")
        return requeued

    def notify(self) -> None:
        """New work was stored: look for it now rather than at the next poll."""
        self._wake.set()

    async def stop(self) -> None:
        tasks = [t for t in (self._dispatcher, *self._workers) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _dispatch(self) -> None:
        while True:
            # Cleared before looking, so a notify() that arrives while filling is not lost.
            self._wake.clear()
            try:
                await self._fill()
            except Exception:
                log.exception("batch: dispatching failed; trying again in %.0f s", self._poll_s)
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for returns the result when the event
            # is set in the same loop iteration as a cancel, swallowing the cancel (stop() then hung).
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._poll_s):
                    await self._wake.wait()

    async def _fill(self) -> None:
        store = self._db.store
        for owner, tier in await self._db.call(store.owners_with_pending):
            free = self._pool_sizes.get(tier, 1) - self._running.get(owner, 0)
            if free <= 0:
                continue
            for task in await self._db.call(store.claim, owner, free, self.lease):
                self._running[owner] = self._running.get(owner, 0) + 1
                worker = asyncio.create_task(self._work(task), name=f"batch-{task.batch_id}-{task.seq}")
                self._workers.add(worker)
                worker.add_done_callback(self._workers.discard)

    async def _work(self, task: ClaimedTask) -> None:
        try:
            content: str | None = None
            error: tuple[str, str] | None = None
            try:
                async with asyncio.timeout(self._task_timeout_s):
                    content = await self._complete(task)
            except ApiError as exc:
                error = (exc.message, exc.error_type)
            except TimeoutError:
                error = (f"The task did not finish within {self._task_timeout_s:.0f} s", "timeout")
            except Exception:
                log.exception("batch %s: task %r failed", task.batch_id, task.task_id)
                error = ("Internal server error", "internal_error")
            if not await self._db.call(self._db.store.finish, task, self.lease, content, error):
                log.error(
                    "batch %s: task %r was no longer leased to this run; result dropped",
                    task.batch_id,
                    task.task_id,
                )
        finally:
            left = self._running.get(task.owner, 1) - 1
            if left > 0:
                self._running[task.owner] = left
            else:
                self._running.pop(task.owner, None)
            self._wake.set()

    async def _complete(self, task: ClaimedTask) -> str:
        needed = kv_tokens_needed(self._engine, task.messages, task.max_tokens)
        if self._kv.capacity is not None and needed > self._kv.capacity:
            raise ApiError(
                400,
                f"The task needs {needed} tokens of KV cache; the engine has {self._kv.capacity}",
                "invalid_request_error",
            )
        while True:
            try:
                reservation = self._kv.reserve(needed)
                try:
                    return await complete_text(self._engine, task.model, task.messages, task.max_tokens)
                finally:
                    reservation.release()
            except ApiError as exc:
                if exc.status != 503:
                    raise
                # KV cache full or engine restarting: background work waits for room rather than
                # failing; the task timeout bounds the wait.
                await asyncio.sleep(self._retry_s)
