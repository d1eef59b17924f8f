"""Dependencies end to end in the plan: the spec grammar, one wait per distinct partition, windows,
and the partition fields of the plan JSON."""
from __future__ import annotations

import json

import pytest

from chronon_airflow.config.loader import parse_dependency
from chronon_airflow.config.model import Dependency
from chronon_airflow.exceptions import InvalidConfig
from chronon_airflow.plan.planner import partition_waits


def dep(spec: str, name: str | None = None, start: str | None = None, end: str | None = None) -> str:
    return json.dumps({"name": name or "w", "spec": spec, "start": start, "end": end})


@pytest.mark.parametrize("spec, table, column, subs, lag", [
    ("ns.t/ds={{ ds }}", "ns.t", "ds", (), 0),
    ("ns.t/dt={{ ds }}", "ns.t", "dt", (), 0),
    ("bare_table/ds={{ ds }}", "bare_table", "ds", (), 0),
    ("ns.t/ds={{ macros.ds_add(ds, -3) }}", "ns.t", "ds", (), 3),
    ("ns.t/ds={{macros.ds_add(ds,2)}}", "ns.t", "ds", (), -2),
    ("ns.m/ds={{ ds }}/hr=00:00", "ns.m", "ds", (("hr", "00:00"),), 0),
    ("ns.s/ds={{ ds }}/table_name=ns.some_view/k=v-1+2", "ns.s", "ds",
     (("table_name", "ns.some_view"), ("k", "v-1+2")), 0),
])
def test_specs_the_compiler_writes_are_parsed(spec, table, column, subs, lag):
    d = parse_dependency(dep(spec, start="2023-01-01", end="2023-02-01"), "metaData.dependencies[0]")
    assert (d.table, d.partition_column, d.subpartitions, d.lag_days) == (table, column, subs, lag)
    assert (d.start, d.end) == ("2023-01-01", "2023-02-01")


def test_staging_query_dependencies_are_bare_specs():
    d = parse_dependency("ns.src/ds={{ ds }}", "metaData.dependencies[0]")
    assert d.table == "ns.src" and d.name == "wait_for_ns_src_ds_ds" and d.start is None


def test_label_part_table_placeholder_is_the_joins_output():
    d = parse_dependency(dep("{{ join_backfill_table }}/ds={{ ds }}"), "labelPart", join_backfill_table="ns.j_v1")
    assert d.table == "ns.j_v1"
    with pytest.raises(InvalidConfig, match="labelPart"):
        parse_dependency(dep("{{ join_backfill_table }}/ds={{ ds }}"), "metaData.dependencies[0]")


@pytest.mark.parametrize("spec", [
    "ns.t/ds={{ ds }}/hr='00'",          # a quote would break out of a partition filter
    "ns.t/ds={{ ds }}/hr=00 00",         # whitespace
    "ns.t/ds={{ ds }}/hr={{ ds }}",      # a template outside the ds position
    "ns.t/ds={{ ds }}/hr=a/b",           # a bare path segment
    "../etc/ds={{ ds }}",                # a path, not a table
    "ns.t/ds={{ next_ds }}",             # only ds and macros.ds_add(ds, N)
    "ns.t/ds={{ macros.ds_add(ds, -99999) }}",  # out of range
    "ns.t.x/ds={{ ds }}",
    "ns.t/ds=2024-01-01",
    "-ns.t/ds={{ ds }}",
])
def test_unsafe_or_unknown_specs_are_refused_naming_the_field(spec):
    with pytest.raises(InvalidConfig) as e:
        parse_dependency(dep(spec), "metaData.dependencies[3]")
    assert e.value.field == "metaData.dependencies[3].spec"


def _d(table="ns.t", column="ds", subs=(), lag=0, start=None, end=None, name="wait_for_t") -> Dependency:
    return Dependency(name, "spec", table, column, subs, lag, start, end)


def test_one_wait_per_distinct_partition_with_merged_windows():
    waits = partition_waits([
        _d(start="2021-04-09"),
        _d(start="2021-03-01", end="2021-04-09"),       # the same partition again: windows merge
        _d(lag=1, name="wait_for_t"),                  # another lag: its own wait, despite the same name
        _d(column="dt", name="wait_for_t_dt"),
        _d(subs=(("hr", "00:00"),), name="wait_for_t_hr"),
        _d(subs=(("hr", "23:00"),), name="wait_for_t_hr"),
    ])
    assert [t.task_id for t in waits] == ["wait_for_t", "wait_for_t_2", "wait_for_t_dt", "wait_for_t_hr",
                                          "wait_for_t_hr_2"]
    first = waits[0].spec.partition
    assert (first.start, first.end) == ("2021-03-01", None)  # an open end stays open
    assert waits[1].spec.partition.lag == 1
    assert waits[2].spec.partition.column == "dt"
    assert waits[4].spec.partition.to_dict() == {"table": "ns.t", "column": "ds", "subpartitions": {"hr": "23:00"},
                                                 "lag": 0, "start": None, "end": None}


def test_windows_merge_to_the_earliest_start_and_latest_end():
    (w,) = partition_waits([_d(start="2022-01-01", end="2022-02-01"), _d(start="2021-06-01", end="2022-01-15")])
    assert (w.spec.partition.start, w.spec.partition.end) == ("2021-06-01", "2022-02-01")
