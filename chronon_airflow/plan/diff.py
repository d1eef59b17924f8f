"""What a repo change does to Airflow: the difference between two plan documents
(:meth:`chronon_airflow.plan.model.Plan.to_dict`), for ``chronon-airflow plan --diff``.

Pure functions on plain JSON documents, no Airflow import. Nothing here knows which DAG kinds, task
kinds or task fields exist: DAGs are matched by ``dag_id``, tasks by ``task_id``, and every other
field is compared generically —

* a mapping (``partition``) field by field, each leaf named by its dotted path
  (``partition.subpartitions.hr``);
* ``upstream``, ``reads`` and ``writes`` as sets (their order means nothing to Airflow);
* any other list (``argv``) in order, as edits on its *options*: ``--conf k=v`` and ``--name x``
  pairs are one option each, so a changed value reads ``--conf k: old -> new``;
* anything else by value.

Errors and warnings are ``(path, field, message)`` records, compared as multisets: added / resolved.
Every list in the result has a fixed order (ids and fields sorted), so equal inputs give equal output.
"""
from __future__ import annotations

import difflib
import json
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

# Fields whose lists are sets: a reordering is no change.
SET_FIELDS = frozenset({"upstream", "reads", "writes"})
# Top-level plan fields holding (path, field, message) records.
RECORD_FIELDS = ("errors", "warnings")
REPO_PLACEHOLDER = "<repo>"

_ABSENT = object()
_PATH_CHAR = r"A-Za-z0-9_.\-"
_KEY_VALUE = re.compile(r"^([A-Za-z0-9_.\-]+)=(.*)$", re.S)


# -- normalization --------------------------------------------------------------------------------


def replace_root(doc: Any, root: str, placeholder: str = REPO_PLACEHOLDER) -> Any:
    """``doc`` with every occurrence of the repo folder ``root`` in its strings replaced by
    ``placeholder``: spark-submit argv holds absolute conf paths, and two sides of a diff live in
    different folders (a copy, a temporary checkout of a git revision)."""
    root = str(root).rstrip("/")
    if not root:
        return doc
    pattern = re.compile(rf"(?<![{_PATH_CHAR}/]){re.escape(root)}(?=/|$|[^{_PATH_CHAR}])")

    def walk(v: Any) -> Any:
        if isinstance(v, str):
            return pattern.sub(placeholder, v)
        if isinstance(v, Mapping):
            return {k: walk(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [walk(x) for x in v]
        return v

    return walk(doc)


# -- the diff -------------------------------------------------------------------------------------


def diff_plans(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """The structured difference from plan document ``old`` to ``new`` (shape in the README,
    "What a repo change does")."""
    old_dags, new_dags = _by_id(old.get("dags") or (), "dag_id"), _by_id(new.get("dags") or (), "dag_id")
    changed = []
    for dag_id in sorted(old_dags.keys() & new_dags.keys()):
        c = _dag_diff(dag_id, old_dags[dag_id], new_dags[dag_id])
        if c is not None:
            changed.append(c)
    dags = {"added": [new_dags[i] for i in sorted(new_dags.keys() - old_dags.keys())],
            "removed": [old_dags[i] for i in sorted(old_dags.keys() - new_dags.keys())],
            "changed": changed}
    records = {name: _records_diff(old.get(name) or (), new.get(name) or ()) for name in RECORD_FIELDS}
    fields = _fields_diff(old, new, skip={"dags", *RECORD_FIELDS})
    any_change = (any(dags.values()) or fields
                  or any(r["added"] or r["resolved"] for r in records.values()))
    return {"changed": bool(any_change), "dags": dags, **records, "fields": fields,
            "new_errors": len(new.get("errors") or ())}


def _by_id(items: Iterable[Mapping[str, Any]], key: str) -> dict[str, Mapping[str, Any]]:
    return {str(x.get(key)): x for x in items}


def _dag_diff(dag_id: str, old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any] | None:
    fields = _fields_diff(old, new, skip={"dag_id", "tasks"})
    old_tasks, new_tasks = _by_id(old.get("tasks") or (), "task_id"), _by_id(new.get("tasks") or (), "task_id")
    changed = []
    for task_id in sorted(old_tasks.keys() & new_tasks.keys()):
        f = _fields_diff(old_tasks[task_id], new_tasks[task_id], skip={"task_id"})
        if f:
            changed.append({"task_id": task_id, "kind": new_tasks[task_id].get("kind"), "fields": f})
    tasks = {"added": [new_tasks[i] for i in sorted(new_tasks.keys() - old_tasks.keys())],
             "removed": [old_tasks[i] for i in sorted(old_tasks.keys() - new_tasks.keys())],
             "changed": changed}
    if not fields and not any(tasks.values()):
        return None
    return {"dag_id": dag_id, "kind": new.get("kind"), "fields": fields, "tasks": tasks}


def _fields_diff(old: Mapping[str, Any], new: Mapping[str, Any], skip: set[str]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for key in sorted((old.keys() | new.keys()) - skip):
        out.extend(_value_diff([key], old.get(key, _ABSENT), new.get(key, _ABSENT), set_like=key in SET_FIELDS))
    return out


def _value_diff(path: list[str], old: Any, new: Any, set_like: bool = False) -> list[dict[str, Any]]:
    if old is not _ABSENT and new is not _ABSENT and _canon(old) == _canon(new):
        return []
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        out: list[dict[str, Any]] = []
        for key in sorted(old.keys() | new.keys(), key=str):
            out.extend(_value_diff([*path, str(key)], old.get(key, _ABSENT), new.get(key, _ABSENT)))
        return out
    change = _leaf(path, old, new)
    if _is_list(old) and _is_list(new):
        if set_like:
            added, removed = _multiset_diff(old, new)
            if not added and not removed:
                return []  # only the order changed
            change.update(added=added, removed=removed)
        else:
            change["edits"] = list_edits(old, new)
    return [change]


def _leaf(path: list[str], old: Any, new: Any) -> dict[str, Any]:
    change: dict[str, Any] = {"field": ".".join(path)}
    if old is not _ABSENT:
        change["old"] = old
    if new is not _ABSENT:
        change["new"] = new
    return change


def _is_list(v: Any) -> bool:
    return isinstance(v, (list, tuple))


def _canon(v: Any) -> str:
    return json.dumps(v, sort_keys=True, default=str)


def _multiset_diff(old: Sequence[Any], new: Sequence[Any]) -> tuple[list[Any], list[Any]]:
    o, n = Counter(_canon(x) for x in old), Counter(_canon(x) for x in new)
    by_key = {_canon(x): x for x in (*old, *new)}
    added = [by_key[k] for k in sorted((n - o).elements())]
    removed = [by_key[k] for k in sorted((o - n).elements())]
    return added, removed


def _records_diff(old: Sequence[Any], new: Sequence[Any]) -> dict[str, list[Any]]:
    added, resolved = _multiset_diff(old, new)
    return {"added": sorted(added, key=_record_key), "resolved": sorted(resolved, key=_record_key)}


def _record_key(r: Any) -> tuple[str, ...]:
    if isinstance(r, Mapping):
        return (str(r.get("path", "")), str(r.get("field", "")), str(r.get("message", "")), _canon(r))
    return ("", "", "", _canon(r))


# -- ordered lists (argv) -------------------------------------------------------------------------


def list_edits(old: Sequence[Any], new: Sequence[Any]) -> list[dict[str, Any]]:
    """The edits turning ``old`` into ``new``, one per option: an element starting with ``-``
    followed by one that does not is one option (``--conf k=v``, ``--name x``); a changed value of
    the same option (``--conf k``, ``--name``) is ``{"op": "changed", "option", "old", "new"}``,
    anything else ``{"op": "added"|"removed", "value": [elements]}``. Order: as in the lists."""
    ou, nu = _units(old), _units(new)
    matcher = difflib.SequenceMatcher(None, [_canon(u) for u in ou], [_canon(u) for u in nu], autojunk=False)
    edits: list[dict[str, Any]] = []
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        # Pair a removed and an added unit of the same option into one change.
        free = list(range(j1, j2))
        paired: dict[int, int] = {}  # old index -> new index
        for i in range(i1, i2):
            key = _option(ou[i])[0]
            j = next((j for j in free if key is not None and _option(nu[j])[0] == key), None)
            if j is not None:
                free.remove(j)
                paired[i] = j
        # In list order: an edit at its place in the new list, a removal before what followed it.
        block: list[tuple[tuple[int, int], dict[str, Any]]] = []
        for i in range(i1, i2):
            if i in paired:
                j = paired[i]
                block.append(((j, 1), {"op": "changed", "option": _option(ou[i])[0], "old": _option(ou[i])[1],
                                       "new": _option(nu[j])[1]}))
            else:
                after = next((paired[k] for k in range(i + 1, i2) if k in paired), j2)
                block.append(((after, 0), {"op": "removed", "value": list(ou[i])}))
        block += [((j, 1), {"op": "added", "value": list(nu[j])}) for j in free]
        edits.extend(edit for _, edit in sorted(block, key=lambda b: b[0]))
    return edits


def _units(seq: Sequence[Any]) -> list[tuple[Any, ...]]:
    out: list[tuple[Any, ...]] = []
    i = 0
    while i < len(seq):
        x = seq[i]
        nxt = seq[i + 1] if i + 1 < len(seq) else None
        if (isinstance(x, str) and x.startswith("-") and "=" not in x
                and isinstance(nxt, str) and not nxt.startswith("-")):
            out.append((x, nxt))
            i += 2
        else:
            out.append((x,))
            i += 1
    return out


def _option(unit: tuple[Any, ...]) -> tuple[str | None, Any]:
    """(the option's identity, its value): ``("--conf spark.x", "1")`` for ``--conf spark.x=1``,
    ``("--name", "n")``, ``("--flag", "v")`` for ``--flag=v``; ``(None, element)`` otherwise."""
    if len(unit) == 2:
        opt, value = unit
        m = _KEY_VALUE.match(value)
        return (f"{opt} {m.group(1)}", m.group(2)) if m else (opt, value)
    x = unit[0]
    if isinstance(x, str) and x.startswith("-") and "=" in x:
        opt, value = x.split("=", 1)
        return opt, value
    return None, x


# -- text -----------------------------------------------------------------------------------------


def format_text(diff: Mapping[str, Any], old_label: str = "old", new_label: str = "new") -> str:
    """The diff for people: added, removed and changed DAGs with ``+``/``-``/``~`` markers and the
    task changes indented under their DAG, then config errors and warnings added / resolved."""
    lines = [f"plan diff: {old_label} -> {new_label}"]
    dags = diff["dags"]
    errors, warnings = diff.get("errors", {}), diff.get("warnings", {})
    if not diff.get("changed"):
        lines.append("no change to Airflow")
    else:
        lines.append(
            f"DAGs: {len(dags['added'])} added, {len(dags['removed'])} removed, {len(dags['changed'])} changed; "
            f"config errors: {len(errors.get('added', ()))} added, {len(errors.get('resolved', ()))} resolved; "
            f"warnings: {len(warnings.get('added', ()))} added, {len(warnings.get('resolved', ()))} resolved")
    if dags["added"]:
        lines += ["", "added DAGs:"]
        for d in dags["added"]:
            lines.append(f"+ {_dag_header(d)}")
            for t in d.get("tasks") or ():
                lines += [f"    + {_task_line(t)}", *_task_details(t, "          ")]
    if dags["removed"]:
        lines += ["", "removed DAGs:"]
        for d in dags["removed"]:
            n = len(d.get("tasks") or ())
            lines.append(f"- {_dag_header(d)}  ({n} task{'' if n == 1 else 's'})")
    if dags["changed"]:
        lines += ["", "changed DAGs:"]
        for d in dags["changed"]:
            lines.append(f"~ {d['dag_id']}  [{d.get('kind')}]")
            lines += _field_lines(d["fields"], "    ")
            tasks = d["tasks"]
            for marker, key in (("+", "added"), ("-", "removed")):
                for t in tasks[key]:
                    lines += [f"    {marker} task {_task_line(t)}", *_task_details(t, "          ")]
            for t in tasks["changed"]:
                lines.append(f"    ~ task {t['task_id']} ({t.get('kind')})")
                lines += _field_lines(t["fields"], "        ")
    if diff.get("fields"):
        lines += ["", "plan fields:"]
        lines += _field_lines(diff["fields"], "")
    for name, title in (("errors", "config errors"), ("warnings", "warnings")):
        records = diff.get(name) or {}
        if records.get("added"):
            lines += ["", f"{title} added:"] + [f"+ {_record(r)}" for r in records["added"]]
        if records.get("resolved"):
            lines += ["", f"{title} resolved:"] + [f"- {_record(r)}" for r in records["resolved"]]
    if diff.get("new_errors"):
        lines += ["", f"the new side has {diff['new_errors']} config error(s)"]
    return "\n".join(lines) + "\n"


def _dag_header(d: Mapping[str, Any]) -> str:
    return (f"{d.get('dag_id')}  [{d.get('kind')}]  team={d.get('team')}  "
            f"schedule={d.get('schedule') or 'manual'}  source={d.get('source')}")


def _task_line(t: Mapping[str, Any]) -> str:
    up = f" <- {', '.join(map(str, t['upstream']))}" if t.get("upstream") else ""
    return f"{t.get('task_id')} ({t.get('kind')}){up}"


def _task_details(t: Mapping[str, Any], indent: str) -> list[str]:
    """A task's own fields besides id, kind and upstream, one line each (``partition: table=ns.t
    column=ds ...``); lists (a whole argv) are left to the JSON."""
    lines = []
    for key in sorted(set(t) - {"task_id", "kind", "upstream"}):
        v = t[key]
        if _is_list(v):
            continue
        if isinstance(v, Mapping):
            shown = " ".join(f"{k}={_show(x)}" for k, x in _flatten(v)) or "{}"
        else:
            shown = _show(v)
        lines.append(f"{indent}{key}: {shown}")
    return lines


def _flatten(v: Mapping[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for k, x in v.items():
        if isinstance(x, Mapping) and x:
            out.extend(_flatten(x, f"{prefix}{k}."))
        else:
            out.append((f"{prefix}{k}", x))
    return out


def _field_lines(fields: Sequence[Mapping[str, Any]], indent: str) -> list[str]:
    lines: list[str] = []
    for f in fields:
        name = f["field"]
        if "old" not in f:
            lines.append(f"{indent}+ {name}: {_show(f['new'])}")
        elif "new" not in f:
            lines.append(f"{indent}- {name}: {_show(f['old'])}")
        elif "added" in f or "removed" in f:
            parts = [f"+{_show(x)}" for x in f.get("added", ())] + [f"-{_show(x)}" for x in f.get("removed", ())]
            lines.append(f"{indent}~ {name}: {' '.join(parts)}")
        elif "edits" in f:
            lines.append(f"{indent}~ {name}:")
            for e in f["edits"]:
                if e["op"] == "changed":
                    lines.append(f"{indent}    ~ {e['option']}: {_show(e['old'])} -> {_show(e['new'])}")
                else:
                    marker = "+" if e["op"] == "added" else "-"
                    lines.append(f"{indent}    {marker} {' '.join(_show(x) for x in e['value'])}")
        else:
            lines.append(f"{indent}~ {name}: {_show(f['old'])} -> {_show(f['new'])}")
    return lines


def _show(v: Any) -> str:
    if isinstance(v, str):
        return v if v and not any(c.isspace() for c in v) else json.dumps(v)
    return json.dumps(v, sort_keys=True, default=str)


def _record(r: Any) -> str:
    if isinstance(r, Mapping):
        return f"{r.get('path')}: {r.get('field') or '<file>'}: {r.get('message')}"
    return _show(r)
