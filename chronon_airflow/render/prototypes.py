"""Tasks built as copies of one constructed operator per kind: what keeps a cold parse cheap.

Constructing an Airflow operator runs ``apply_defaults`` once per class of its hierarchy (two to
four here) and about 85 ``BaseOperator.__setattr__`` calls: 0.07–0.17 ms a task, most of a parse
without the cache. The tasks of one kind in one DAG file differ in a few arguments only (a wait's
table, a Spark step's job, a model), so the render layer constructs one operator per *kind* — its
class, the arguments all such tasks share and the DAG's ``default_args`` — and builds each task of
that kind as a copy of it (~0.002 ms):

1. its attributes, with every container (edge sets, callback, inlet and outlet lists, params,
   executor config, the recorded constructor arguments) a fresh copy, as Airflow's own
   ``BaseOperator.__deepcopy__`` makes them;
2. its ``task_id``, then the task's own arguments set by the operator class's ``_set_task_args`` —
   the method its ``__init__`` uses for those arguments, so one place maps them to attributes (and
   checks them) — and its outlets;
3. added to its DAG as the constructor adds it (the root task group, then ``task.dag = dag``, which
   runs Airflow's ``DAG.add_task``: start and end dates, the task dict, duplicate ids).

Only classes with ``_set_task_args`` are copied, and only tasks without a skip hook whose shared
arguments are hashable; the rest are constructed. ``tests/unit/render/test_prototypes.py`` checks,
for every task of the conformance corpus and the sample configs, that the copy equals the operator
the constructor builds: attribute by attribute and as the dag-processor serializes it.
"""
from __future__ import annotations

import copy
from collections.abc import Hashable
from typing import Any

from airflow.sdk import DAG, BaseOperator
from airflow.sdk.definitions._internal.contextmanager import DagContext
from airflow.sdk.definitions.param import ParamsDict

_INIT_KWARGS = "_BaseOperator__init_kwargs"  # what apply_defaults records of the constructor's arguments


class Prototypes:
    """One constructed operator per kind, and the tasks built as copies of it (see the module)."""

    def __init__(self) -> None:
        # kind -> (its constructed operator, the names of its attributes that hold containers)
        self._made: dict[Hashable, tuple[BaseOperator, tuple[str, ...]]] = {}
        self._dag_args: tuple[DAG | None, tuple] = (None, ())  # the last DAG's default_args, as a key
        self.copies = 0  # tasks built as copies (the rest were constructed)

    def build(self, dag: DAG, cls: type[BaseOperator], task_id: str, shared: dict[str, Any],
              task_args: dict[str, Any]) -> BaseOperator:
        """The task ``task_id`` of ``dag``: ``cls(task_id=..., **shared, **task_args)`` added to it."""
        try:
            if self._dag_args[0] is not dag:
                self._dag_args = (dag, tuple(sorted(dag.default_args.items())))
            # The renderer passes a kind's shared arguments in one order: no need to sort them.
            key: Hashable = (cls, tuple(shared.items()), self._dag_args[1])
            hash(key)
        except TypeError:  # a list or dict among the arguments: this kind is always constructed
            key = None
        if key is None or DagContext.get_current() is not None or not hasattr(cls, "_set_task_args"):
            # No kind to share, or a DAG context would adopt the prototype: construct it.
            return cls(task_id=task_id, dag=dag, **shared, **task_args)
        made = self._made.get(key)
        if made is None:
            # Outside any DAG, with the DAG's default_args: what a constructed task has before it joins one.
            proto = cls(task_id=task_id, default_args=dict(dag.default_args), **shared, **task_args)
            made = self._made[key] = (proto, tuple(k for k, v in vars(proto).items()
                                                   if isinstance(v, (set, list, dict, ParamsDict))))
        self.copies += 1
        return _copy(*made, dag, task_id, task_args)


def _copy(proto: BaseOperator, containers: tuple[str, ...], dag: DAG, task_id: str,
          task_args: dict[str, Any]) -> BaseOperator:
    op = object.__new__(type(proto))
    state = dict(vars(proto))
    for name in containers:
        state[name] = copy.copy(state[name])
    state["task_id"] = task_id
    state[_INIT_KWARGS]["task_id"] = task_id
    op.__dict__.update(state)
    args = dict(task_args)
    outlets = args.pop("outlets", None)
    op._set_task_args(**args)  # type: ignore[attr-defined]  # checked by Prototypes.build
    if outlets is not None:
        op.outlets = list(outlets)
    # As BaseOperator.__init__ joins a task to the DAG it was given.
    group = dag.task_group
    group.add(op)
    op.task_group = group
    state[_INIT_KWARGS].update(dag=dag, task_group=group)
    op.dag = dag
    return op
