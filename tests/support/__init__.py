"""Helpers shared by the test tiers, importable as ``tests.support`` (pytest puts the project root
on ``sys.path``, see ``pythonpath`` in pyproject.toml)."""
