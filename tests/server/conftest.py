"""Fixtures for the gateway tests: the app over the sim engines, task tokens per tier, a real server.

The sim engines are the deterministic test double (reference_server.engines.sim); nothing here needs
vLLM. ``headers_for(tier)`` exchanges the tier's demo API key at POST /api/token, the way a client
does, so every /v1 call goes through the real authentication path.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import signal
import sqlite3
import time
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import httpx
import jsonschema
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from reference_server.app import create_app
from reference_server.auth import DEMO_KEYS
from reference_server.config import ServerConfig
from reference_server.engines.sim import SimChatEngine, SimEmbedEngine
from reference_server.errors import ApiError
from reference_server.models import Tier
from suite.openapi import load_spec
from tests.support.server_process import ServerProcess
from tests.support.uvicorn_thread import serving

AppFactory = Callable[..., FastAPI]


@pytest.fixture
def make_app() -> AppFactory:
    """Build a gateway over fresh sim engines; keyword arguments go to ServerConfig or SimChatEngine."""

    def build(
        config: ServerConfig | None = None, chat: SimChatEngine | None = None, **engine_kwargs: Any
    ) -> FastAPI:
        return create_app(config or ServerConfig(), chat or SimChatEngine(**engine_kwargs), SimEmbedEngine())

    return build


@pytest.fixture
def app(make_app: AppFactory) -> FastAPI:
    return make_app()


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    # raise_server_exceptions=False: a bug must show up as the 500 a client would get, so the
    # "never a 5xx" tests see it instead of a Python traceback.
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def _headers(http: TestClient | httpx.Client, tier: str) -> dict[str, str]:
    response = http.post(
        "/api/token",
        headers={
            "Authorization": f"Bearer {DEMO_KEYS[cast(Tier, tier)]}",
            "Content-Type": "application/json",
        },
    )
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['task_token']}"}


@pytest.fixture
def headers_for(client: TestClient) -> Callable[[str], dict[str, str]]:
    """Authorization headers with a fresh task token of the tier's demo key."""
    return lambda tier: _headers(client, tier)


@pytest.fixture
def token_headers() -> Callable[[TestClient | httpx.Client, str], dict[str, str]]:
    """Like headers_for, for a client of another app (make_app) or a real server."""
    return _headers


@pytest.fixture
def run_async() -> Callable[[FastAPI, Callable[[httpx.AsyncClient], Coroutine[Any, Any, Any]]], Any]:
    """Run ``scenario(client)`` with an httpx.AsyncClient on the app in process (ASGITransport).

    ASGITransport buffers each response whole, so this suits overlapping complete requests (the
    server-side timing is real), not watching a stream arrive: see ``live_server`` for that.
    """

    def run(app: FastAPI, scenario: Callable[[httpx.AsyncClient], Coroutine[Any, Any, Any]]) -> Any:
        async def main() -> Any:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://gateway", timeout=30) as c:
                return await scenario(c)

        return asyncio.run(main())

    return run


@pytest.fixture
def live_server() -> Callable[[FastAPI], Any]:
    """``with live_server(app) as base_url:`` a real uvicorn on a loopback port, for true streaming."""
    return functools.partial(serving, lifespan="off")


# ------------------------------------------------------------------------------- batch and pipeline


class RecordingChatEngine(SimChatEngine):
    """The sim engine, plus what batch and pipeline tests need to see: every body it was sent, the most
    requests it ever had in flight at once, and a failure (500) for any prompt containing ``fail_on``."""

    def __init__(self, fail_on: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.fail_on = fail_on
        self.bodies: list[dict[str, Any]] = []
        self.in_flight = 0
        self.max_in_flight = 0

    async def complete(self, body: dict[str, Any]) -> dict[str, Any]:
        self.bodies.append(body)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.fail_on and any(self.fail_on in m["content"] for m in body["messages"]):
                raise ApiError(500, "the test engine fails this prompt on purpose", "internal_error")
            return await super().complete(body)
        finally:
            self.in_flight -= 1


BatchPoller = Callable[..., list[dict[str, Any]]]


def _poll_batch(
    http: TestClient | httpx.Client,
    batch_id: str,
    headers: Callable[[], dict[str, str]],
    until: Callable[[dict[str, Any]], bool] | None = None,
    timeout_s: float = 30.0,
    interval_s: float = 0.05,
) -> list[dict[str, Any]]:
    """GET the batch until ``until(body)`` (default: a terminal status); returns every body seen.

    ``headers`` is called for each poll so a long wait can exchange fresh task tokens (they live 60 s).
    """
    done = until or (lambda body: body["status"] in ("completed", "failed"))
    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout_s
    while True:
        response = http.get(f"/v1/batch/{batch_id}", headers=headers())
        assert response.status_code == 200, response.text
        seen.append(response.json())
        if done(seen[-1]):
            return seen
        last = seen[-1]
        assert time.monotonic() < deadline, (
            f"batch not done after {timeout_s} s: {last['status']}, "
            f"{last['completed']} of {last['total']} finished"
        )
        time.sleep(interval_s)


@pytest.fixture
def poll_batch() -> BatchPoller:
    return _poll_batch


def _batch_body(n: int, model: str = "42-logic", **extra: Any) -> dict[str, Any]:
    tasks = [{"id": f"t{i}", "messages": [{"role": "user", "content": f"Task {i}"}]} for i in range(n)]
    return {"model": model, "tasks": tasks, **extra}


@pytest.fixture
def batch_body() -> Callable[..., dict[str, Any]]:
    """``batch_body(n, model="42-logic", **extra)``: a batch of n one-message tasks with ids t0 .. t{n-1}."""
    return _batch_body


@pytest.fixture
def recording_engine() -> type[RecordingChatEngine]:
    """The RecordingChatEngine class, to build with the options a test needs."""
    return RecordingChatEngine


@pytest.fixture
def assert_matches_42ai_schema() -> Callable[[str, Any], None]:
    """``check(name, body)``: ``body`` validates against ``components/schemas/<name>`` of the 42ai spec."""
    spec = load_spec("42ai")

    def check(name: str, body: Any) -> None:
        # OpenAPI 3.1 schemas are JSON Schema 2020-12; the whole document is the root so $refs resolve.
        validator = jsonschema.Draft202012Validator({**spec, "$ref": f"#/components/schemas/{name}"})
        errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(body)]
        assert not errors, f"{name}: {errors}"

    return check


def _batch_task_rows(data_dir: Path, *, timeout_s: float = 5.0) -> list[dict[str, Any]]:
    # A plain reader of the file a server left behind: WAL lets it see every committed transaction.
    with contextlib.closing(sqlite3.connect(data_dir / "batches.sqlite3", timeout=timeout_s)) as db:
        db.row_factory = sqlite3.Row
        rows = db.execute("SELECT task_id, state, attempts, completions FROM tasks ORDER BY seq").fetchall()
    return [dict(r) for r in rows]


@pytest.fixture
def batch_task_rows() -> Callable[[Path], list[dict[str, Any]]]:
    """``rows(data_dir)``: task_id, state, attempts and completions of every task in the batch store."""
    return _batch_task_rows


def _check_finished_once_after_crash(
    data_dir: Path, at_kill: list[dict[str, Any]], final: dict[str, Any]
) -> None:
    cut_off = {r["task_id"] for r in at_kill if r["state"] == "running"}
    done_before = {r["task_id"] for r in at_kill if r["state"] == "completed"}
    assert cut_off, "no task was running at the kill: the test proved nothing"
    total = len(at_kill)
    assert final["status"] == "completed", final
    assert final["total"] == final["completed"] == total
    assert sorted(final["results"]) == sorted(r["task_id"] for r in at_kill)
    results = final["results"].values()
    assert all(r["status"] == "completed" and isinstance(r["content"], str) for r in results)
    rows = _batch_task_rows(data_dir)
    assert {r["state"] for r in rows} == {"completed"}
    assert [r["completions"] for r in rows] == [1] * total, "a task was committed twice (or never)"
    for row in rows:
        if row["task_id"] in cut_off:
            assert row["attempts"] == 2, row  # claimed by the killed server, then again after the restart
        if row["task_id"] in done_before:
            assert row["attempts"] == 1, row  # finished before the kill: never run again


@pytest.fixture
def check_finished_once_after_crash() -> Callable[[Path, list[dict[str, Any]], dict[str, Any]], None]:
    """``check(data_dir, rows_at_kill, final_batch_body)``: some task was cut off by the kill, and every
    task finished exactly once, over HTTP and in the store; tasks cut off ran twice, tasks done before
    the kill once."""
    return _check_finished_once_after_crash


@dataclass
class CrashRun:
    batch_id: str
    #: The store's task rows right after the SIGKILL.
    at_kill: list[dict[str, Any]]
    #: The batch as the restarted server finally reports it.
    final: dict[str, Any]
    restarted_stderr: str


def _pro_headers(http: httpx.Client) -> dict[str, str]:
    response = http.post("/api/token", headers={"Authorization": f"Bearer {DEMO_KEYS['pro']}"})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['task_token']}"}


def _kill_while_a_task_runs(pgid: int, data_dir: Path, *, deadline_s: float) -> list[dict[str, Any]]:
    """SIGKILL the process group at a moment the store holds a ``running`` task; returns the rows then.

    The group is frozen (SIGSTOP) while the store is read, so what is read is exactly what the kill
    leaves behind. Killing right after an HTTP poll was a race: the sim tasks run in lockstep, and in
    the moment between one round finishing and the next being claimed nothing is running.
    """
    deadline = time.monotonic() + deadline_s
    while True:
        os.killpg(pgid, signal.SIGSTOP)
        try:
            rows = _batch_task_rows(data_dir, timeout_s=0.5)
        except sqlite3.OperationalError:
            rows = []  # frozen holding a lock the reader needs: let it run on and look again
        if any(r["state"] == "running" for r in rows):
            os.killpg(pgid, signal.SIGKILL)
            return rows
        os.killpg(pgid, signal.SIGCONT)
        assert time.monotonic() < deadline, f"no task seen running within {deadline_s} s: {rows}"
        time.sleep(0.01)


def _crash_mid_batch(
    args: list[str],
    data_dir: Path,
    body: dict[str, Any],
    kill_when: Callable[[dict[str, Any]], bool],
    *,
    startup_timeout: float = 60,
    poll_timeout_s: float = 60,
    interval_s: float = 0.05,
) -> CrashRun:
    """Start ``python -m reference_server *args --data-dir data_dir``, submit ``body`` with the pro key,
    SIGKILL the server's process group once ``kill_when(batch)`` and a task is running in the store,
    start a new server on the same data dir and poll the batch to its end (with fresh task tokens: the
    batch belongs to the key, not to a token or a process)."""
    args = [*args, "--data-dir", str(data_dir)]
    with (
        ServerProcess(args, startup_timeout=startup_timeout) as first,
        httpx.Client(base_url=first.base_url, timeout=30, trust_env=False) as http,
    ):
        headers = _pro_headers(http)
        submitted = http.post("/v1/batch", headers=headers, json=body)
        assert submitted.status_code == 202, submitted.text
        batch_id = submitted.json()["batch_id"]
        _poll_batch(
            http, batch_id, lambda: headers, until=kill_when, timeout_s=poll_timeout_s, interval_s=interval_s
        )
        assert first.pid is not None
        at_kill = _kill_while_a_task_runs(first.pid, data_dir, deadline_s=poll_timeout_s)
        assert first.wait(10) == -signal.SIGKILL
    with (
        ServerProcess(args, startup_timeout=startup_timeout) as second,
        httpx.Client(base_url=second.base_url, timeout=30, trust_env=False) as http,
    ):
        final = _poll_batch(
            http,
            batch_id,
            lambda: _pro_headers(http),
            timeout_s=poll_timeout_s,
            interval_s=max(interval_s, 0.1),
        )[-1]
        stderr = second.stderr()
    return CrashRun(batch_id, at_kill, final, stderr)


@pytest.fixture
def crash_mid_batch() -> Callable[..., CrashRun]:
    """``crash_mid_batch(args, data_dir, body, kill_when, ...)``: see _crash_mid_batch."""
    return _crash_mid_batch
