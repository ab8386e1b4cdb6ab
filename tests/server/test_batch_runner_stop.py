"""The batch runner stops even when work finishes in the very loop iteration that shutdown begins.

On Python 3.11 ``asyncio.wait_for`` returns its result when the awaited event is set in the same loop
iteration as a cancel, swallowing the cancel: the dispatcher then looped forever and the server's
shutdown hung (seen as a test that timed out after 600 s in TestClient's lifespan shutdown).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from reference_server.batch.runner import BatchRunner
from reference_server.batch.store import AsyncStore, BatchStore
from reference_server.engines.sim import SimChatEngine
from reference_server.limits import KvBudget


def test_stop_right_after_a_wake_up_ends_the_dispatcher(tmp_path: Path) -> None:
    async def scenario() -> None:
        db = AsyncStore(BatchStore(tmp_path / "batches.sqlite3"))
        runner = BatchRunner(db, SimChatEngine(), KvBudget(None), {"free": 1}, task_timeout_s=5, poll_s=0.2)
        try:
            await runner.start()
            await asyncio.sleep(0.1)  # the dispatcher has looked and now waits for a wake-up
            runner.notify()  # a worker finished in this loop iteration ...
            async with asyncio.timeout(3):
                await runner.stop()  # ... and shutdown cancels the dispatcher in the same one
        finally:
            db.close()

    for _ in range(5):
        asyncio.run(scenario())
