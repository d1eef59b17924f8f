"""One real spark-submit of the local engine through ChrononSparkSubmitOperator inside dag.test()."""
from __future__ import annotations

import datetime as dt
import importlib.util
import json
import os
from pathlib import Path

import pandas as pd
import pytest

from chronon_airflow import naming, warehouse

pytestmark = pytest.mark.spark

QR = "joins/search/query_relevance.v1"

DAG_FILE = """
import datetime as dt
import json
from pathlib import Path

from airflow.sdk import DAG

from chronon_airflow.operators.chronon_spark import ChrononSparkSubmitOperator
from chronon_airflow.spark import build_spark_job

conf_path = {conf_path!r}
teams = json.loads(Path({teams!r}).read_text())
job = build_spark_job(json.loads(Path(conf_path).read_text()), conf_path, "backfill", teams, engine="local",
                      env="production")

with DAG("chronon_spark_dag_test", schedule=None, start_date=dt.datetime(2024, 1, 1), catchup=False) as dag:
    ChrononSparkSubmitOperator(task_id="raw_join", job=job, start_ds="{{{{ macros.ds_add(ds, -1) }}}}",
                               end_ds="{{{{ ds }}}}", retries=0)
"""


def test_operator_fields_are_not_templated_from_config(reference_repo):
    from chronon_airflow.operators.chronon_spark import ChrononSparkSubmitOperator
    from chronon_airflow.spark import build_spark_job

    conf = json.loads((reference_repo / "production" / QR).read_text())
    teams = json.loads((reference_repo / "teams.json").read_text())
    job = build_spark_job(conf, "/r/production/" + QR, "backfill", teams, engine="local", env="production")
    op = ChrononSparkSubmitOperator(task_id="t", job=job, conn_id="chronon_spark")
    assert tuple(op.template_fields) == ("start_ds", "end_ds")
    assert op.application_args == job.application_args and op._conn_id == "chronon_spark"
    assert op.durable is True
    # The dict form (as a plan JSON would carry it) builds the same operator.
    again = ChrononSparkSubmitOperator(task_id="t2", job=job.to_dict())
    assert again.job == job


def _expected_dwell_per_click(root: Path, rows: pd.DataFrame) -> dict:
    """Independent pandas computation of item_dwell_per_click_7d for the given left rows."""
    clicks = []
    for ds in warehouse.list_partitions(root, "search_data.item_clicks"):
        part = pd.read_parquet(warehouse.partition_path(root, "search_data.item_clicks", ds))
        part["ds"] = ds
        clicks.append(part)
    clicks = pd.concat(clicks)
    out = {}
    for r in rows.itertuples():
        seen = clicks[(clicks.item_id == r.item_id) & (clicks.ts < r.ts) & (clicks.ts >= r.ts - 7 * 86_400_000)
                      & (clicks.ds <= r.ds)]
        total = seen.dwell_time_ms.sum() if len(seen) else None
        out[(r.user_id, r.ts)] = None if total is None else total / max(len(seen), 1)
    return out


def test_dag_test_runs_local_engine_join(reference_repo, airflow_db, tmp_path, monkeypatch, capfd):
    from chronon_local_engine import sample_data

    root = tmp_path / "warehouse"
    sample_data.generate(root, "2024-01-01", "2024-01-03", seed=11)
    monkeypatch.setenv("AIRFLOW__CHRONON__WAREHOUSE", str(root))
    monkeypatch.setenv("AIRFLOW_CONN_CHRONON_SPARK", json.dumps({"conn_type": "spark", "host": "local[2]"}))
    # Prove the operator finds the venv's spark-submit by itself.
    monkeypatch.setenv("PATH", "/usr/local/bin:/usr/bin:/bin")

    dags = Path(os.environ["AIRFLOW__CORE__DAGS_FOLDER"])
    dags.mkdir(parents=True, exist_ok=True)
    dag_file = dags / "chronon_spark_dag_test.py"
    dag_file.write_text(DAG_FILE.format(conf_path=str(reference_repo / "production" / QR),
                                        teams=str(reference_repo / "teams.json")))
    spec = importlib.util.spec_from_file_location("chronon_spark_dag_test", dag_file)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)

    run = module.dag.test(logical_date=dt.datetime(2024, 1, 3, tzinfo=dt.timezone.utc))
    states = {ti.task_id: ti.state for ti in run.get_task_instances()}
    assert states == {"raw_join": "success"}, states
    assert os.environ["PATH"] == "/usr/local/bin:/usr/bin:/bin"  # restored after the submit

    table = naming.pre_mt_table("search_features", "search.query_relevance.v1")
    assert table == "search_features.search_query_relevance_v1_pre_mt"
    # start_ds = ds_add(ds, -1) was rendered and substituted: exactly 01-02 and 01-03.
    assert warehouse.list_partitions(root, table) == ["2024-01-02", "2024-01-03"]
    df = pd.read_parquet(warehouse.partition_path(root, table, "2024-01-03"))
    assert list(df.columns) == ["user_id", "item_id", "query_text", "ts", "item_dwell_per_click_7d"]
    events = pd.read_parquet(warehouse.partition_path(root, "search_data.search_events", "2024-01-03"))
    assert len(df) == len(events)
    assert (df.query_text == df.query_text.str.strip().str.lower()).all()
    df["ds"] = "2024-01-03"
    expected = _expected_dwell_per_click(root, df)
    got = {(r.user_id, r.ts): (None if pd.isna(r.item_dwell_per_click_7d) else r.item_dwell_per_click_7d)
           for r in df.itertuples()}
    assert got.keys() == expected.keys()
    for key, value in expected.items():
        assert got[key] == pytest.approx(value) if value is not None else got[key] is None, key
    captured = capfd.readouterr()
    assert "spark-submit" in captured.out + captured.err
