"""Shared fixtures for the project's own tests."""

from __future__ import annotations

import pytest

from suite.catalogue import Catalogue, load_catalogue


@pytest.fixture(scope="session")
def catalogue() -> Catalogue:
    return load_catalogue()
