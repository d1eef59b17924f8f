"""Ranges that cannot silently go wrong: the check_range task, the backfill refusal, the run note."""
from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

import pytest

from chronon_airflow.exceptions import InvalidRange
from chronon_airflow.partitions import resolve_range


def _ctx(params=None, run_type="manual", interval=None, events=None):
    return {"params": params or {}, "data_interval_start": interval, "logical_date": interval,
            "triggering_asset_events": events or {}, "dag_run": SimpleNamespace(run_type=run_type)}


def _check(context):
    from chronon_airflow.operators.range_check import ChrononRangeCheckOperator

    return ChrononRangeCheckOperator(task_id="check_range").execute(context)


def test_a_manual_range_is_checked_and_returned():
    assert _check(_ctx({"start_ds": "2024-04-20", "end_ds": "2024-04-22"})) == \
        {"start_ds": "2024-04-20", "end_ds": "2024-04-22", "partitions": 3}
    assert _check(_ctx({"start_ds": "2024-04-20"}))["end_ds"] == "2024-04-20"  # end_ds defaults to start_ds


@pytest.mark.parametrize("params, message", [
    ({"start_ds": "2024-04-22", "end_ds": "2024-04-20"}, "start_ds 2024-04-22 is after end_ds 2024-04-20"),
    ({"start_ds": "2024-02-30"}, "is not a YYYY-MM-DD date"),
    ({"start_ds": "24-04-20", "end_ds": "2024-04-21"}, "is not a YYYY-MM-DD date"),
    ({"start_ds": "2000-01-01", "end_ds": "2024-04-20"}, "max_range_days"),
])
def test_a_bad_range_fails_the_first_task_for_good(params, message):
    from airflow.sdk.exceptions import AirflowFailException

    with pytest.raises(AirflowFailException, match=message):
        _check(_ctx(params))


def test_max_range_days_is_the_setting(monkeypatch):
    from airflow.sdk.exceptions import AirflowFailException

    monkeypatch.setenv("AIRFLOW__CHRONON__MAX_RANGE_DAYS", "7")
    assert _check(_ctx({"start_ds": "2024-04-01", "end_ds": "2024-04-07"}))["partitions"] == 7
    with pytest.raises(AirflowFailException, match="spans 8 partitions, more than 7"):
        _check(_ctx({"start_ds": "2024-04-01", "end_ds": "2024-04-08"}))


def test_a_backfill_run_computes_its_own_interval_and_refuses_a_conf_range():
    day = dt.datetime(2024, 4, 18, tzinfo=dt.timezone.utc)
    assert resolve_range({"start_ds": None, "end_ds": None}, day, day, None, {"run_type": "backfill"}) == \
        ("2024-04-18", "2024-04-18")
    assert _check(_ctx({}, "backfill", day))["start_ds"] == "2024-04-18"
    with pytest.raises(InvalidRange, match="given to an Airflow backfill.*own ds is 2024-04-18"):
        resolve_range({"start_ds": "2024-04-20", "end_ds": "2024-04-21"}, day, day, None,
                      SimpleNamespace(run_type=SimpleNamespace(value="backfill")))
    from airflow.sdk.exceptions import AirflowFailException

    with pytest.raises(AirflowFailException, match="Override existing params"):
        _check(_ctx({"start_ds": "2024-04-20", "end_ds": "2024-04-21"}, "backfill", day))
    # Scheduled and manual runs are unaffected.
    assert _check(_ctx({}, "scheduled", day))["start_ds"] == "2024-04-18"


def test_every_task_resolves_the_range_with_the_run():
    """A task given no dates takes the run's range, with the run, so none applies a backfill's conf."""
    from airflow.sdk.exceptions import AirflowFailException

    from chronon_airflow.partitions import task_range
    from chronon_airflow.sensors.partition import ChrononPartitionSensor

    day = dt.datetime(2024, 4, 18, tzinfo=dt.timezone.utc)
    assert task_range(None, None, _ctx({}, "scheduled", day)) == ("2024-04-18", "2024-04-18")
    assert task_range(None, None, _ctx({"start_ds": "2024-04-20", "end_ds": "2024-04-21"}, "manual", None)) == \
        ("2024-04-20", "2024-04-21")
    # Given dates (a hand-wired DAG's rendered templates) win.
    assert task_range("2024-01-01", "2024-01-02", _ctx({}, "scheduled", day)) == ("2024-01-01", "2024-01-02")
    with pytest.raises(InvalidRange, match="Override existing params"):
        task_range(None, None, _ctx({"start_ds": "2024-04-20", "end_ds": "2024-04-21"}, "backfill", day))
    # A sensor fails (no retry) on such a run, before it asks any catalog.
    sensor = ChrononPartitionSensor(task_id="wait", table="db.t")
    with pytest.raises(AirflowFailException, match="Override existing params"):
        sensor.execute(_ctx({"start_ds": "2024-04-20", "end_ds": "2024-04-21"}, "backfill", day))


# -- run notes ------------------------------------------------------------------------------------

def _run(conf=None, run_type="manual", interval=None, events=(), params=("start_ds", "end_ds"), note=None):
    return SimpleNamespace(dag=SimpleNamespace(params={p: None for p in params}), conf=conf or {}, run_type=run_type,
                           data_interval_start=interval, logical_date=interval, consumed_asset_events=list(events),
                           note=note, run_id="r1")


def test_the_run_note_says_what_the_run_computes():
    from chronon_airflow.plugin.run_notes import on_dag_run_running, range_note

    day = dt.datetime(2024, 4, 18, tzinfo=dt.timezone.utc)
    assert range_note(_run({"start_ds": "2024-04-20", "end_ds": "2024-04-21"})) == \
        "Chronon: computes ds 2024-04-20..2024-04-21 (2 partitions) from the run's start_ds/end_ds"
    assert range_note(_run(run_type="scheduled", interval=day)) == \
        "Chronon: computes ds 2024-04-18 from its data interval (scheduled)"
    event = SimpleNamespace(extra={"start_ds": "2024-04-20", "end_ds": "2024-04-22", "job_id": "j"})
    assert range_note(_run(run_type="asset_triggered", interval=day, events=[event])).endswith(
        "2024-04-20..2024-04-22 (3 partitions) from the asset event that triggered it")
    refused = range_note(_run({"start_ds": "2024-04-20"}, run_type="backfill", interval=day))
    assert refused.startswith("Chronon: refused, its check_range task fails") and "Airflow backfill" in refused
    assert "after end_ds" in range_note(_run({"start_ds": "2024-04-22", "end_ds": "2024-04-20"}))
    assert range_note(_run(params=())) is None  # a DAG without a range: no note

    # A user's note is kept; the Chronon line is replaced when a cleared run starts again.
    run = _run({"start_ds": "2024-04-20"}, note="make demo: 2024-04-20")
    on_dag_run_running(run, "started")
    assert run.note == "make demo: 2024-04-20\n\nChronon: computes ds 2024-04-20 from the run's start_ds/end_ds"
    run.conf = {"start_ds": "2024-04-21"}
    on_dag_run_running(run, "started")
    assert run.note.count("Chronon:") == 1 and run.note.endswith("ds 2024-04-21 from the run's start_ds/end_ds")


def test_the_listener_never_raises():
    from chronon_airflow.plugin.run_notes import on_dag_run_running

    class Broken:
        dag = property(lambda self: 1 / 0)

    on_dag_run_running(Broken(), "started")


def test_a_manual_run_without_a_logical_date_fails_check_range_not_a_template():
    """A manual run without start_ds/end_ds and without a logical date: check_range names the fix;
    the range template sees Jinja's undefined for the missing variables, not a crash."""
    from airflow.sdk.exceptions import AirflowFailException
    from jinja2 import StrictUndefined

    with pytest.raises(AirflowFailException, match="trigger it with start_ds and end_ds"):
        _check({"params": {}, "dag_run": SimpleNamespace(run_type="manual")})
    missing = StrictUndefined(name="data_interval_start")
    with pytest.raises(InvalidRange, match="no logical date"):
        resolve_range({}, missing, StrictUndefined(name="logical_date"), missing, missing)
    day = dt.datetime(2024, 4, 18, tzinfo=dt.timezone.utc)
    assert resolve_range({}, day, day, StrictUndefined(name="triggering_asset_events")) == ("2024-04-18",) * 2


def test_dags_without_a_range_template_no_dates():
    from chronon_airflow.deployment import Deployment
    from chronon_airflow.plan import load_plan
    from chronon_airflow.render.dags import render
    from tests.support.paths import CONFIGS

    loaded, plan = load_plan(CONFIGS, Deployment())
    dags = render(plan, loaded.root, Deployment(), only_dag_id="chronon.metadata_upload.search")
    task = dags["chronon.metadata_upload.search"].get_task("metadata_upload")
    assert (task.start_ds, task.end_ds) == (None, None)
    assert "check_range" not in dags["chronon.metadata_upload.search"].task_ids
