"""Where the project's repos and data live, and a writable copy of a repo for tests that break it."""
from __future__ import annotations

import shutil
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
CONFIGS = PROJECT_ROOT / "configs"
DAGS = PROJECT_ROOT / "dags"
PLUGINS = PROJECT_ROOT / "plugins"
TEST_DATA = PROJECT_ROOT / "tests" / "data"
ARTIFACTS = PROJECT_ROOT / "test-artifacts"
# The small repo compiled by the real upstream compiler, beside the checkout (read-only).
REFERENCE = (PROJECT_ROOT.parent / "shared" / "chronon_reference").resolve()
# The conformance corpus: a repo shaped like upstream's sample repo, compiled by chronon-ai 0.0.115.
CORPUS = PROJECT_ROOT / "tests" / "corpus" / "chronon_sample"


def writable_copy(src: Path, dest: Path, ignore=None) -> Path:
    """A copy of a repo (the shared reference one is read-only) that a test may break."""
    shutil.copytree(src, dest, ignore=ignore)
    for p in dest.rglob("*"):
        p.chmod(0o755 if p.is_dir() else 0o644)
    return dest
