"""The "chronon" Airflow plugin: macros, the job link's registration, the Chronon page (the link
itself, a provider part, is tested in tests/unit/test_links.py).

Registration and the real API-server mount are checked in subprocesses (Airflow reads its plugins
folder and auth settings once per process); the page's content through the sub-app directly.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from chronon_airflow.plugin import macros, page
from tests.support.paths import PLUGINS, PROJECT_ROOT

AIRFLOW = str(Path(sys.executable).parent / "airflow")
HOSTILE_TEAM = "<script>alert(1)</script>{{ 7*7 }}"
HOSTILE_FILE = "<img src=x onerror=alert(2)>"
SECRET_PARAM = "sk-live-SECRET-4242"
SECRET_TOKEN = "tok-SECRET-7373"
CONN_PASSWORD = "conn-PASSWORD-9191"


def _plugin_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = os.environ.copy()
    env.update({"AIRFLOW__CORE__PLUGINS_FOLDER": str(PLUGINS), "AIRFLOW__CORE__LAZY_LOAD_PLUGINS": "False"})
    env.update(extra)
    return env


# -- macros -------------------------------------------------------------------------------------

def test_ds_range_is_inclusive_and_crosses_months():
    assert macros.ds_range("2024-02-27", "2024-03-01") == ["2024-02-27", "2024-02-28", "2024-02-29", "2024-03-01"]
    assert macros.ds_range("2024-01-05", "2024-01-05") == ["2024-01-05"]
    assert macros.ds_count("2023-12-31", "2024-01-02") == 3


@pytest.mark.parametrize("args", [("2024-01-05", "2024-01-04"), ("2024-1-5", "2024-01-06"),
                                  ("2024-02-30", "2024-03-01"), ("2000-01-01", "2099-01-01")])
def test_ds_range_rejects_bad_ranges(args):
    with pytest.raises(ValueError):
        macros.ds_range(*args)


def test_ds_range_follows_the_runs_range_rule(monkeypatch):
    """The macro refuses what a run refuses: more than [chronon] max_range_days partitions (3,660 by
    default), so a template cannot list a range no run of the DAG would accept."""
    with pytest.raises(ValueError, match=r"spans 4000 partitions, more than 3660 \(\[chronon\] max_range_days\)"):
        macros.ds_range("2010-01-01", macros.ds_add("2010-01-01", 3999))
    monkeypatch.setenv("AIRFLOW__CHRONON__MAX_RANGE_DAYS", "3")
    assert macros.ds_count("2024-01-01", "2024-01-03") == 3
    with pytest.raises(ValueError, match="more than 3"):
        macros.ds_range("2024-01-01", "2024-01-04")


def test_ds_add_and_partition_spec():
    assert macros.ds_add("2024-03-01", -1) == "2024-02-29"
    assert macros.ds_add("2024-12-31", 1) == "2025-01-01"
    assert macros.partition_spec("data.events", "2024-01-05") == "data.events/ds=2024-01-05"
    assert macros.partition_spec("data.events", "2024-01-05", "dt", "hr=00") == "data.events/dt=2024-01-05/hr=00"
    assert macros.partition_specs("a.b", "2024-01-01", "2024-01-02") == ["a.b/ds=2024-01-01", "a.b/ds=2024-01-02"]
    for bad in [("data.events; drop", "2024-01-05"), ("data.events", "{{ ds }}"),
                ("data.events", "2024-01-05", "ds=x")]:
        with pytest.raises(ValueError):
            macros.partition_spec(*bad)
    with pytest.raises(ValueError):
        macros.ds_add("2024-01-01", "1")


# -- registration -------------------------------------------------------------------------------

def test_airflow_lists_the_plugin_from_the_plugins_folder(tmp_path):
    out = subprocess.run([AIRFLOW, "plugins", "--output", "json"], env=_plugin_env(tmp_path), capture_output=True,
                         text=True, timeout=300, check=True).stdout
    plugin = next(p for p in json.loads(out) if p["name"] == "chronon")
    assert plugin["source"].endswith("chronon_plugin.py")
    assert {m.rsplit(".", 1)[1] for m in plugin["macros"]} >= {"ds_range", "ds_add", "partition_spec"}
    assert plugin["fastapi_apps"] == [{"app": "fastapi.applications.FastAPI", "url_prefix": "/chronon",
                                       "name": "Chronon"}]
    assert plugin["external_views"][0]["url_route"] == "chronon"
    assert plugin["external_views"][0]["href"] == "chronon/"
    assert len(plugin["operator_extra_links"]) == 1


def test_api_server_computes_the_job_link_of_every_operator_declaring_it(tmp_path):
    """Deserialized (as the API server does, plugins loaded), each operator declaring the job link gets
    the plugin's class, which computes the URL from XCom; any other operator gets none."""
    code = textwrap.dedent(f"""
        import datetime as dt, json
        from airflow.sdk import DAG
        from airflow.serialization.serialized_objects import DagSerialization
        from chronon_airflow.operators import model_backend as ops
        from chronon_airflow.sensors.model_batch_job import ModelBatchJobSensor
        join = json.load(open({str(PROJECT_ROOT / "configs/production/joins/risk/txn_fraud.v1")!r}))
        declaring = {{"wait"}}
        with DAG("links", schedule=None, start_date=dt.datetime(2024, 1, 1)) as dag:
            ModelBatchJobSensor(task_id="wait", job_id="j", start_ds="2024-01-01", end_ds="2024-01-01",
                                backend="reference")
            ops.RegisterModelTransformOperator(task_id="register", join=join)
            for name in dir(ops):  # the operator that submits and waits, when this version has one
                cls = getattr(ops, name)
                if isinstance(cls, type) and any(l.name == "Model backend job"
                                                 for l in getattr(cls, "operator_extra_links", ()) or ()):
                    cls(task_id="run", join=join, start_ds="2024-01-01", end_ds="2024-01-01")
                    declaring.add("run")
        restored = DagSerialization.from_dict(DagSerialization.to_dict(dag))
        print("RESULT" + json.dumps({{t.task_id: [type(l).__name__ for l in t.operator_extra_links]
                                     for t in restored.tasks}} | {{"declaring": sorted(declaring)}}))
    """)
    out = subprocess.run([sys.executable, "-c", code], env=_plugin_env(tmp_path), capture_output=True, text=True,
                         timeout=300, check=True, cwd=PROJECT_ROOT).stdout
    result = json.loads(out.split("RESULT", 1)[1])
    for task_id in result.pop("declaring"):
        assert result.pop(task_id) == ["ModelBackendJobLinkForApiServer"], task_id
    assert result == {"register": []}


def test_macros_render_in_templates_as_macros_chronon(tmp_path):
    # The name templates use: Airflow attaches plugin macros as macros.<plugin name>.
    code = textwrap.dedent("""
        from airflow import plugins_manager
        plugins_manager.integrate_macros_plugins()
        import jinja2
        from airflow.sdk.execution_time import macros
        t = jinja2.Template("{{ macros.chronon.ds_range('2024-01-30', '2024-02-01') | join(',') }}|"
                            "{{ macros.chronon.partition_spec('ns.t', macros.chronon.ds_add('2024-03-01', -1)) }}")
        print(t.render(macros=macros))
    """)
    out = subprocess.run([sys.executable, "-c", code], env=_plugin_env(tmp_path), capture_output=True, text=True,
                         timeout=300, check=True).stdout.strip().splitlines()[-1]
    assert out == "2024-01-30,2024-01-31,2024-02-01|ns.t/ds=2024-02-29"


def test_real_api_server_mounts_the_page_behind_airflow_auth(tmp_path, airflow_db):
    """The app Airflow's API server builds: /chronon needs a valid token, the nav entry is served."""
    pw_file = tmp_path / "passwords.json"
    code = textwrap.dedent(f"""
        import json
        from starlette.testclient import TestClient
        from airflow.api_fastapi.app import create_app
        with TestClient(create_app(), base_url="http://localhost") as c:
            out = {{"anon": c.get("/chronon/api/summary").status_code,
                    "bad": c.get("/chronon/", headers={{"Authorization": "Bearer not-a-jwt"}}).status_code}}
            pw = json.load(open({str(pw_file)!r}))["admin"]
            tok = c.post("/auth/token", json={{"username": "admin", "password": pw}}).json()["access_token"]
            auth = {{"Authorization": "Bearer " + tok}}
            r = c.get("/chronon/api/summary", headers=auth)
            out["auth"] = r.status_code
            out["dag_urls"] = [d["url"] for d in r.json()["dags"]]
            out["html"] = c.get("/chronon/", headers=auth).text
            out["views"] = [v for p in c.get("/api/v2/plugins", headers=auth).json()["plugins"]
                            for v in p["external_views"]]
        print("RESULT" + json.dumps(out))
    """)
    env = _plugin_env(tmp_path, AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS="admin:admin",
                      AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE=str(pw_file),
                      AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS="False",
                      AIRFLOW__CHRONON__REPO_PATH=str(PROJECT_ROOT / "configs"))
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULT")), None)
    assert line, proc.stdout[-2000:] + proc.stderr[-4000:]
    out = json.loads(line[len("RESULT"):])
    assert out["anon"] == 401 and out["bad"] in (401, 403)
    assert out["auth"] == 200
    assert "/dags/chronon.join_backfill.search.query_relevance.v1" in out["dag_urls"]
    assert 'href="/dags/chronon.join_backfill.risk.txn_fraud.v1"' in out["html"]
    assert {"name": "Chronon", "url_route": "chronon", "href": "chronon/", "destination": "nav"}.items() <= \
        next(v for v in out["views"] if v["name"] == "Chronon").items()


# -- the page -----------------------------------------------------------------------------------

@pytest.fixture
def client():
    # Auth is Airflow's (tested above through the real API server); here the content is under test.
    page.app.dependency_overrides[page.require_reader] = lambda: None
    try:
        yield TestClient(page.app)
    finally:
        page.app.dependency_overrides.clear()


def test_page_requires_credentials_without_override():
    assert TestClient(page.app).get("/").status_code == 401
    assert TestClient(page.app).get("/api/summary").status_code == 401


def test_page_lists_configs(client, monkeypatch, configs_repo):
    monkeypatch.setenv("AIRFLOW__CHRONON__REPO_PATH", str(configs_repo))
    data = client.get("/api/summary").json()
    joins = {j["name"]: j for j in data["joins"]}
    assert set(joins) >= {"search.query_relevance.v1", "risk.txn_fraud.v1", "search.plain_join.v1"}
    assert joins["risk.txn_fraud.v1"]["models"] == ["fraud_scorer", "merchant_embedder"]
    assert joins["search.plain_join.v1"]["dag_ids"] == ["chronon.join_backfill.search.plain_join.v1",
                                                        "chronon.metadata_upload.search"]
    assert data["backends"][0]["name"] == "reference"
    assert data["backends"][0]["conn_id"] == "chronon_backend_reference"
    assert "search_features.search_query_relevance_v1_pre_mt" in {t["table"] for t in data["tables"]}
    assert data["errors"] == []
    resp = client.get("/")
    assert resp.status_code == 200
    assert "script-src" not in resp.headers["content-security-policy"]  # default-src 'none' covers scripts
    html_text = resp.text
    for d in data["dags"]:
        assert f'<a href="/dags/{d["dag_id"]}" target="_top">{d["dag_id"]}</a>' in html_text
    assert "No config errors." in html_text


def _broken_reference_copy(reference_repo: Path, tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    shutil.copytree(reference_repo, root)
    qr = root / "production/joins/search/query_relevance.v1"
    conf = json.loads(qr.read_text())
    conf["metaData"]["team"] = HOSTILE_TEAM  # the loader echoes the bad value in its message
    qr.write_text(json.dumps(conf))
    # A hostile file name: unreadable JSON makes it an error row whose path is that name.
    (root / "production/joins/search" / HOSTILE_FILE).write_text("{not json")
    tf = root / "production/joins/risk/txn_fraud.v1"
    conf = json.loads(tf.read_text())
    params = conf["modelTransforms"]["transforms"][0]["model"]["inferenceSpec"]["modelBackendParams"]
    params.update({"api_key": SECRET_PARAM, "auth_token": SECRET_TOKEN})
    tf.write_text(json.dumps(conf))
    return root


def test_broken_reference_copy_lists_errors_escaped_and_hides_secrets(client, monkeypatch, tmp_path, reference_repo):
    root = _broken_reference_copy(reference_repo, tmp_path)
    monkeypatch.setenv("AIRFLOW__CHRONON__REPO_PATH", str(root))
    monkeypatch.setenv("AIRFLOW_CONN_CHRONON_BACKEND_REFERENCE", json.dumps(
        {"conn_type": "chronon_model_backend", "host": "backend.internal", "port": 8765, "schema": "http",
         "password": CONN_PASSWORD}))

    data = client.get("/api/summary").json()
    errors = {(e["path"], e["field"]): e["message"] for e in data["errors"]}
    assert HOSTILE_TEAM in errors[("production/joins/search/query_relevance.v1", "metaData.team")]
    assert f"production/joins/search/{HOSTILE_FILE}" in {p for p, _ in errors}
    # The good joins still plan.
    assert "chronon.join_backfill.risk.txn_fraud.v1" in {d["dag_id"] for d in data["dags"]}
    assert data["backends"][0]["url"] == "http://backend.internal:8765"

    html_text = client.get("/").text
    # Listed with file and field ...
    assert "<code>production/joins/search/query_relevance.v1</code>" in html_text
    assert "<code>metaData.team</code>" in html_text
    # ... escaped, never markup, never evaluated as a template.
    assert "<script" not in html_text and "<img" not in html_text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;{{ 7*7 }}" in html_text
    assert "&lt;img src=x onerror=alert(2)&gt;" in html_text
    assert ">49<" not in html_text and " 49" not in html_text
    # Secrets: neither the secret-looking params nor the connection password appear anywhere.
    for body in (html_text, client.get("/api/summary").text):
        assert SECRET_PARAM not in body and SECRET_TOKEN not in body and CONN_PASSWORD not in body
    model = next(m for m in data["models"] if m["join"] == "risk.txn_fraud.v1")
    assert model["params"]["api_key"] == "***" and model["params"]["auth_token"] == "***"
    # Ordinary params stay visible for debugging, on the page too.
    assert model["params"]["model_version"] not in ("", "***")
    assert f"<code>model_version</code>={model['params']['model_version']}" in html_text


def test_unloadable_repo_is_an_error_row_not_a_500(client, monkeypatch, tmp_path):
    monkeypatch.setenv("AIRFLOW__CHRONON__REPO_PATH", str(tmp_path / "missing<b>"))
    resp = client.get("/")
    assert resp.status_code == 200
    assert "<b>" not in resp.text
    assert client.get("/api/summary").json()["errors"]


def test_links_follow_the_mount_point():
    # Airflow behind a path prefix mounts the app at <prefix>/chronon: DAG links keep the prefix.
    class Req:
        scope = {"root_path": "/airflow/chronon"}

    assert page.airflow_base(Req()) == "/airflow"
    assert page.dag_href("/airflow", "chronon.join_backfill.a/b") == "/airflow/dags/chronon.join_backfill.a%2Fb"
