"""No shared mutable state and no side effects at import in ``chronon_airflow``.

A module-level container that functions write to is process-wide state: two apps, two DAG-file
parses or two tests share it. Each one must be justified in :data:`ALLOWED` (why sharing it is safe)
or moved onto the object that owns it (the Chronon page keeps its plan cache on its app). Importing a
module must register nothing process-wide (copyreg, atexit, signal handlers, logging configuration).
"""
from __future__ import annotations

import argparse
import ast
import os
from pathlib import Path

import chronon_airflow

PACKAGE = Path(chronon_airflow.__file__).resolve().parent

# (module path, name) -> why sharing it across the process is safe.
ALLOWED = {
    ("settings.py", "_FILE_CACHE"): "the [chronon] section of airflow.cfg keyed by the file's path and "
                                    "validated by its (mtime, size) on every read: a pure memo of the file",
}
MUTATORS = {"append", "extend", "insert", "update", "setdefault", "add", "pop", "popitem", "clear", "remove",
            "discard", "__setitem__"}
MUTABLE_CALLS = {"dict", "list", "set", "defaultdict", "OrderedDict", "Counter", "deque", "WeakValueDictionary"}
# Process-wide registrations that must not run at import.
REGISTRATIONS = {("copyreg", "pickle"), ("copyreg", "constructor"), ("atexit", "register"), ("signal", "signal"),
                 ("logging", "basicConfig"), ("logging", "config"), ("mimetypes", "add_type"),
                 ("warnings", "filterwarnings"), ("warnings", "simplefilter"), ("sys", "setrecursionlimit")}


def _modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        yield path.relative_to(PACKAGE).as_posix(), ast.parse(path.read_text())


def _mutable_globals(tree: ast.Module) -> set[str]:
    names = set()
    for node in tree.body:
        targets, value = [], None
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        called = getattr(value.func, "id", getattr(value.func, "attr", None)) if isinstance(value, ast.Call) else None
        mutable = isinstance(value, (ast.Dict, ast.List, ast.Set, ast.DictComp, ast.ListComp, ast.SetComp)) or (
            called in MUTABLE_CALLS)
        if mutable:
            names |= {t.id for t in targets if isinstance(t, ast.Name)}
    return names


def _written_in_functions(tree: ast.Module, names: set[str]) -> set[str]:
    written = set()
    for fn in ast.walk(tree):
        if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for node in ast.walk(fn):
            if isinstance(node, ast.Global):
                written |= set(node.names) & names
            elif isinstance(node, (ast.Assign, ast.AugAssign, ast.Delete)):
                for t in node.targets if isinstance(node, (ast.Assign, ast.Delete)) else [node.target]:
                    if isinstance(t, ast.Subscript) and isinstance(t.value, ast.Name) and t.value.id in names:
                        written.add(t.value.id)
            elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                  and isinstance(node.func.value, ast.Name) and node.func.value.id in names
                  and node.func.attr in MUTATORS):
                written.add(node.func.value.id)
    return written


def test_no_module_level_state_written_by_functions():
    found = {(rel, name) for rel, tree in _modules() for name in _written_in_functions(tree, _mutable_globals(tree))}
    unexplained = sorted(found - set(ALLOWED))
    assert not unexplained, \
        f"module-level state written at run time (move it onto its owner or justify it): {unexplained}"
    assert set(ALLOWED) <= found, "an ALLOWED entry no longer exists: drop it"


def test_nothing_registers_process_wide_at_import():
    """Module-level statements (outside functions and classes) call no registration API."""
    offending = []
    for rel, tree in _modules():
        for stmt in tree.body:
            if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                continue
            for node in ast.walk(stmt):
                if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                    owner = node.func.value
                    name = owner.id if isinstance(owner, ast.Name) else getattr(owner, "attr", None)
                    if (name, node.func.attr) in REGISTRATIONS:
                        offending.append(f"{rel}:{node.lineno} {name}.{node.func.attr}")
                if isinstance(node, ast.Import) and any(a.name == "copyreg" for a in node.names):
                    offending.append(f"{rel}:{node.lineno} imports copyreg")
    assert not offending, offending


def test_the_page_keeps_its_plan_cache_on_its_app(tmp_path, monkeypatch):
    import shutil

    from chronon_airflow.plugin import page
    from tests.support.paths import CONFIGS

    repo = tmp_path / "configs"
    shutil.copytree(CONFIGS, repo, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    monkeypatch.setenv("AIRFLOW__CHRONON__REPO_PATH", str(repo))
    # The parse-cache key (render.cache.snapshot) also covers the package's code, which may change
    # while this runs in a working tree: key on the repo's files alone here.
    import hashlib

    from chronon_airflow.render import cache as render_cache

    def files_key(root, deployment=None):
        stamps = sorted((str(p), p.stat().st_mtime_ns) for p in Path(root).rglob("*") if p.is_file())
        return argparse.Namespace(key=hashlib.sha256(repr(stamps).encode()).hexdigest())

    monkeypatch.setattr(render_cache, "snapshot", files_key)
    loads = []
    real_load = page._load
    monkeypatch.setattr(page, "_load", lambda root, deployment=None: loads.append(root) or real_load(root, deployment))

    first, second = page.create_app(), page.create_app()
    assert isinstance(first.state.plan_cache, page.PlanCache)
    assert first.state.plan_cache is not second.state.plan_cache
    assert not hasattr(page, "_LOADED")

    summary = page.build_summary(cache=first.state.plan_cache, resolve_connections=False)
    assert summary["joins"] and summary["errors"] == []
    page.build_summary(cache=first.state.plan_cache, resolve_connections=False)
    assert len(loads) == 1  # unchanged repo: served from the app's cache
    page.build_summary(cache=second.state.plan_cache, resolve_connections=False)
    assert len(loads) == 2  # another app shares nothing

    changed = repo / "production/joins/risk/txn_fraud.v1"
    st = changed.stat()
    os.utime(changed, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    page.build_summary(cache=first.state.plan_cache, resolve_connections=False)
    assert len(loads) == 3  # a changed compiled file: loaded again
    page.build_summary(resolve_connections=False)
    assert len(loads) == 4  # no cache given: loaded afresh
