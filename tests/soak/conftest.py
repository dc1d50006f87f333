"""The soak tests use the end-to-end fixtures."""

from tests.e2e.conftest import artifacts, test_db  # noqa: F401
