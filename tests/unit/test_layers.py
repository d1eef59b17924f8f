"""The package's import graph: layers go one way and no two parts import each other in a circle.

How the graph is built: every module of ``chronon_airflow`` is parsed with :mod:`ast` (never
imported). A node is a subpackage (``config``, ``plan``, ``render``, ``operators``, ...) or a
top-level module (``settings``, ``deployment``, ``cli``, ...); ``chronon_airflow/__init__.py`` is
the node ``__init__``. An edge is any ``import``/``from ... import`` statement, wherever it stands:

* at module level, inside a function or method, or under ``if TYPE_CHECKING:`` — they all count.
  A function-level import only moves the cost of a dependency to its first use; it is still a
  dependency, and a circle through one still ties two layers together;
* ``from chronon_airflow import x`` is an edge to node ``x`` when ``x`` is a submodule, else to
  ``__init__``; relative imports are resolved against the importing module.

Imports by name at run time (``importlib.import_module`` of a configured catalog class) are not
edges: they are configuration, not code structure.

Rules:

1. No circle among nodes.
2. No upward arrow: :data:`LAYERS` orders the nodes from the bottom; an edge may go down or sideways
   (the same layer, when that makes no circle), never up. Every node must be in a layer, so a new
   part is placed on purpose.
3. The pure layers (:data:`PURE`: config, plan, spark, backend and the modules beneath them) import
   nothing of Airflow, at any level, and importing all of their modules loads no ``airflow``
   module. ``deployment`` is the one seam: it resolves the Spark connection through Airflow inside
   a function, so the plan stays a pure function of (repo, deployment).
4. The product never imports the tools beside it (:data:`TOOLS`), at any level: they are separate
   packages installed by extras and found through entry points.
"""
from __future__ import annotations

import ast
import os
import subprocess
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import chronon_airflow

PACKAGE = Path(chronon_airflow.__file__).resolve().parent
ROOT = "__init__"

# Bottom to top. An import may point to its own layer or one below, never above.
LAYERS: list[tuple[str, set[str]]] = [
    ("foundation: errors, names, settings, provider metadata", {ROOT, "exceptions", "naming", "settings", "provider"}),
    ("partition ranges, warehouse layout", {"partitions", "warehouse"}),
    ("config (compiled JSON), spark (argv)", {"config", "spark"}),
    ("backend (CHIP-9 client), deployment (settings + Spark connection)", {"backend", "deployment"}),
    ("plan", {"plan"}),
    ("Airflow basics: connections, hooks, catalogs, lineage", {"connections", "hooks", "catalogs", "lineage"}),
    ("triggers, extra links, notifications (failure e-mails show the links)", {"triggers", "links", "notifications"}),
    ("operators, sensors", {"operators", "sensors"}),
    ("render (plan -> DAGs)", {"render"}),
    ("plugin (API server page, macros, link registration)", {"plugin"}),
    ("command line", {"cli", "cli_backend"}),
]
RANK = {node: i for i, (_, nodes) in enumerate(LAYERS) for node in nodes}
PURE = {ROOT, "exceptions", "naming", "settings", "provider", "partitions", "warehouse", "config", "spark",
        "backend", "plan"}
TOOLS = {"chronon_local_engine", "chronon_reference_backend", "chronon_demo", "chronon_bench"}


@dataclass(frozen=True)
class Import:
    source: str  # importing module, dotted
    target: str  # imported module (or module.attribute), dotted
    line: int
    function_level: bool

    def where(self) -> str:
        return f"{self.source}:{self.line} imports {self.target}" + (" (in a function)" if self.function_level else "")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> list[Import]:
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    tree = ast.parse(path.read_text(), filename=str(path))
    found: list[Import] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            nested = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, ast.Import):
                found.extend(Import(module, a.name, child.lineno, in_function) for a in child.names)
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    base = package.split(".")[: len(package.split(".")) - (child.level - 1)]
                    target = ".".join(base + ([child.module] if child.module else []))
                else:
                    target = child.module or ""
                found.extend(Import(module, f"{target}.{a.name}" if a.name != "*" else target, child.lineno,
                                    in_function) for a in child.names)
            visit(child, nested)

    visit(tree, False)
    return found


def _node(dotted: str) -> str | None:
    """The graph node of a ``chronon_airflow...`` name, ``None`` for anything else."""
    parts = dotted.split(".")
    if parts[0] != "chronon_airflow":
        return None
    if len(parts) == 1:
        return ROOT
    first = parts[1]
    if (PACKAGE / first).is_dir() or (PACKAGE / f"{first}.py").is_file():
        return first
    return ROOT  # an attribute of the package itself, e.g. chronon_airflow.__version__


MODULES = sorted(PACKAGE.rglob("*.py"))
IMPORTS = [imp for path in MODULES for imp in _imports(path)]


def _edges() -> dict[tuple[str, str], list[Import]]:
    edges: dict[tuple[str, str], list[Import]] = defaultdict(list)
    for imp in IMPORTS:
        src, dst = _node(imp.source), _node(imp.target)
        if dst is not None and src != dst:
            edges[(src, dst)].append(imp)
    return edges


def _circles(edges: dict[tuple[str, str], list[Import]]) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan)."""
    graph: dict[str, list[str]] = defaultdict(list)
    for src, dst in edges:
        graph[src].append(dst)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def strong(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(set(graph) | {d for _, d in edges}):
        if v not in index:
            strong(v)
    return found


def test_the_graph_is_read_from_every_module():
    assert len(MODULES) > 40 and IMPORTS
    nodes = {_node(_module_name(p)) for p in MODULES}
    assert {"config", "plan", "render", "operators", "sensors", "links", "plugin", "backend"} <= nodes
    # Function-level imports are in the graph (render imports its operators inside functions).
    assert any(i.function_level and _node(i.target) == "operators" for i in IMPORTS if _node(i.source) == "render")


def test_every_part_is_in_a_layer():
    nodes = {_node(_module_name(p)) for p in MODULES}
    unplaced = sorted(nodes - set(RANK))
    assert not unplaced, f"place these parts of chronon_airflow in LAYERS (tests/unit/test_layers.py): {unplaced}"


def test_no_import_circle_among_parts():
    edges = _edges()
    circles = _circles(edges)
    details = []
    for component in circles:
        details += [imp.where() for (src, dst), imps in sorted(edges.items())
                    if src in component and dst in component for imp in imps]
    assert not circles, f"import circles among {circles}:\n" + "\n".join(details)


def test_no_upward_import():
    upward = [imp.where() + f"  [{src} is below {dst}]"
              for (src, dst), imps in sorted(_edges().items()) if src in RANK and dst in RANK and RANK[dst] > RANK[src]
              for imp in imps]
    assert not upward, "imports from a lower layer up to a higher one:\n" + "\n".join(upward)


def test_pure_layers_import_no_airflow():
    offending = [imp.where() for imp in IMPORTS
                 if _node(imp.source) in PURE and imp.target.split(".")[0] == "airflow"]
    assert not offending, "\n".join(offending)


def test_importing_the_pure_layers_loads_no_airflow_module():
    """The runtime view of the rule above: module-level imports only, followed transitively."""
    pure_modules = [_module_name(p) for p in MODULES if _node(_module_name(p)) in PURE | {"deployment"}]
    code = ("import importlib, sys\n"
            f"for m in {pure_modules!r}: importlib.import_module(m)\n"
            "print(sorted(m for m in sys.modules if m == 'airflow' or m.startswith('airflow.')))\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW__")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120,
                         cwd=PACKAGE.parent, env=env)
    assert out.stdout.strip() == "[]", out.stdout


def test_the_product_never_imports_the_tools():
    offending = [imp.where() for imp in IMPORTS if imp.target.split(".")[0] in TOOLS]
    assert not offending, "\n".join(offending)
