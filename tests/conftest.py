"""Shared fixtures for the project's own tests."""

from __future__ import annotations

from collections.abc import Generator, Iterator

import pytest

from suite.catalogue import Catalogue, load_catalogue
from tests.support.vllm_reference import SharedVllmReference

_SHARED_VLLM = "shared_vllm_reference"
#: The session's shared vLLM reference once a test asked for it (for the teardown hook below).
_shared_vllm: list[SharedVllmReference] = []


@pytest.fixture(scope="session")
def catalogue() -> Catalogue:
    return load_catalogue()


@pytest.fixture(scope="session")
def shared_vllm_reference(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SharedVllmReference]:
    """The reference server over real vLLM that the ``vllm`` modules share: ``.server()`` starts it."""
    shared = SharedVllmReference(tmp_path_factory.mktemp("shared-vllm"))
    _shared_vllm.append(shared)
    try:
        yield shared
    finally:
        _shared_vllm.remove(shared)
        shared.stop()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Generator[None]:
    # After the item's own fixtures are torn down (a gateway attached to the shared engines goes
    # first): stop the shared server when the next test does not use it, so it neither idles beside
    # tests that start engines of their own nor outlives the modules that need it.
    outcome = yield
    uses = _SHARED_VLLM in getattr(item, "fixturenames", ())
    next_uses = nextitem is not None and _SHARED_VLLM in getattr(nextitem, "fixturenames", ())
    if uses and not next_uses:
        for shared in _shared_vllm:
            shared.stop()
    return outcome
