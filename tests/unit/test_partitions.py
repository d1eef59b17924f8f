"""Partition ranges of scheduled, manual and asset-triggered runs."""
from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

import pytest

from chronon_airflow.partitions import PartitionRangeError, ds_range, resolve_range


def test_scheduled_run_uses_its_data_interval_start():
    start = dt.datetime(2024, 3, 16, tzinfo=dt.timezone.utc)
    assert resolve_range({"start_ds": None, "end_ds": None}, start, start + dt.timedelta(days=1)) == \
        ("2024-03-16", "2024-03-16")


def test_manual_run_params_win_and_logical_date_may_be_none():
    assert resolve_range({"start_ds": "2024-03-15", "end_ds": "2024-03-17"}, None, None) == \
        ("2024-03-15", "2024-03-17")
    assert resolve_range({"start_ds": "2024-03-15"}) == ("2024-03-15", "2024-03-15")


@pytest.mark.parametrize("params, fragment", [
    ({"start_ds": "2024-03-17", "end_ds": "2024-03-15"}, "is after"),
    ({"start_ds": "2024-02-30", "end_ds": "2024-03-15"}, "not a YYYY-MM-DD"),
    ({"start_ds": "{{ 7*7 }}", "end_ds": "2024-03-15"}, "not a YYYY-MM-DD"),
    ({"start_ds": "1990-01-01", "end_ds": "2024-03-15"}, "more than"),
])
def test_bad_manual_ranges_are_rejected(params, fragment):
    with pytest.raises(PartitionRangeError, match=fragment):
        resolve_range(params)


def test_asset_triggered_run_takes_the_range_from_the_events():
    events = {"asset": [SimpleNamespace(extra={"start_ds": "2024-03-15", "end_ds": "2024-03-16"}),
                        SimpleNamespace(extra={"start_ds": "2024-03-17", "end_ds": "2024-03-17"})]}
    when = dt.datetime(2030, 1, 1, tzinfo=dt.timezone.utc)  # the run's own dates must not matter
    assert resolve_range({}, when, when, events) == ("2024-03-15", "2024-03-17")


def test_no_dates_at_all_is_a_clear_error():
    with pytest.raises(PartitionRangeError, match="trigger it with start_ds and end_ds"):
        resolve_range({}, None, None, {})


def test_ds_range_is_inclusive():
    assert ds_range("2024-02-28", "2024-03-01") == ["2024-02-28", "2024-02-29", "2024-03-01"]
