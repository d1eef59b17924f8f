"""The live stack (real Airflow processes) shared by the e2e tests of this folder."""
import pytest

pytest.register_assert_rewrite("tests.support.live_stack")

from tests.support.live_stack import live_stack  # noqa: E402,F401  (the module-scoped fixture)

# Fixtures that start real Airflow processes. A test using one must carry the e2e marker, so that
# `pytest -m "not e2e"` never starts a stack: collection fails naming any test that does not.
STACK_FIXTURES = {"live_stack", "dist"}


def pytest_collection_modifyitems(config, items):
    unmarked = [item.nodeid for item in items
                if STACK_FIXTURES & set(getattr(item, "fixturenames", ())) and item.get_closest_marker("e2e") is None]
    if unmarked:
        raise pytest.UsageError(f"tests using a live Airflow stack must be marked e2e: {unmarked}")
