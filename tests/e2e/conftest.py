"""The live stack (real Airflow processes) shared by the e2e tests of this folder."""
import pytest

pytest.register_assert_rewrite("tests.support.live_stack")

from tests.support.live_stack import live_stack  # noqa: E402,F401  (the module-scoped fixture)
