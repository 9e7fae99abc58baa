from __future__ import annotations

from collections.abc import Iterator

import pytest

pytest.importorskip("fastapi", reason="lorabench serve needs the web extra (pip install 'lorabench[web]')")

from fastapi.testclient import TestClient

from lorabench.web import create_app


@pytest.fixture(scope="session")
def client() -> Iterator[TestClient]:
    """One app (and one compute worker process) for the API tests of the session."""
    with TestClient(create_app()) as test_client:
        yield test_client
