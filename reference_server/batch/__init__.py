"""Durable asynchronous batches: SQLite state (store), per-key workers (runner), the app-facing service."""

from __future__ import annotations

from reference_server.batch.service import BatchService
from reference_server.batch.store import BatchView, DataDirBusy, DataDirLock, NewTask

__all__ = ["BatchService", "BatchView", "DataDirBusy", "DataDirLock", "NewTask"]
