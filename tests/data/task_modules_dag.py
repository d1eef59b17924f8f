"""A DAG whose task start records the modules the task process already had when it parsed this
file (tests/test_e2e.py compares them with the bench's P2 probe context)."""
import json
import os
import sys
from pathlib import Path

if os.environ.get("_AIRFLOW_PARSING_CONTEXT_DAG_ID") == "task_modules_probe":
    Path(__file__).with_name("task_modules.json").write_text(json.dumps(
        {"argv": sys.argv, "modules": sorted(m for m in sys.modules if not m.startswith("__"))}))

import pendulum  # noqa: E402
from airflow.providers.standard.operators.bash import BashOperator  # noqa: E402
from airflow.sdk import DAG  # noqa: E402

with DAG("task_modules_probe", schedule=None, start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
         tags=["test"]):
    BashOperator(task_id="noop", bash_command="true")
