"""``make demo DEMO_ARGS=--fail-batch-job``: the flag, and the fault it injects through the reference
backend's admin API (lifted after the first FAILED job in ``once`` mode, kept in ``always`` mode)."""
from __future__ import annotations

import time

import pytest

from chronon_airflow.backend.http import HttpModelBackend
from chronon_airflow.backend.idempotency import idempotency_key
from tests.support.backend import load_join, query_relevance_rows, register_join, start_backend, write_pre_mt
from tests.support.net import free_port

QR = "search/query_relevance.v1"
QR_NAME = "search.query_relevance.v1"


def test_the_flag_is_documented_and_parsed(monkeypatch):
    import signal

    from chronon_demo import __main__ as cli

    monkeypatch.setattr(signal, "signal", lambda *a: None)  # main() installs handlers: not in pytest
    seen = {}
    monkeypatch.setattr("chronon_demo.__main__.run_demo", lambda *a, **kw: seen.update(kw) or 0)
    assert cli.main(["run", "--fail-batch-job"]) == 0 and seen["fail_batch_job"] == "once"
    assert cli.main(["run", "--fail-batch-job", "always"]) == 0 and seen["fail_batch_job"] == "always"
    assert cli.main(["run"]) == 0 and seen["fail_batch_job"] is None
    with pytest.raises(SystemExit):
        cli.main(["run", "--fail-batch-job", "sometimes"])
    makefile = (cli.settings.PROJECT_ROOT / "Makefile").read_text()
    assert "python -m chronon_demo run $(DEMO_ARGS)" in makefile
    readme = (cli.settings.PROJECT_ROOT / "README.md").read_text()
    assert "make demo DEMO_ARGS=--fail-batch-job" in readme and "python -m chronon_demo recover" in readme


@pytest.mark.parametrize("mode", ["once", "always"])
def test_the_fault_fails_the_join_batch_job_and_once_lifts_it(tmp_path, mode):
    from chronon_demo.run import BatchJobFault

    b = start_backend(tmp_path / "home", free_port(), tmp_path / "warehouse")
    try:
        join = load_join(QR)
        with HttpModelBackend(b.url) as c:
            register_join(c, join)
            fault = BatchJobFault(b.url, QR_NAME, mode, log=lambda _: None)
            fault.inject()
            assert b.admin("GET", "/admin/faults")["fail_jobs_for_joins"] == [QR_NAME]
            fault()  # no job failed yet: nothing to lift
            assert not fault.lifted
            ds = "2024-05-01"
            write_pre_mt(b.warehouse, join, ds, query_relevance_rows(ds))
            job = c.run_model_batch_job(join, ds, ds, idempotency_key(join, ds, ds))
            deadline = time.monotonic() + 30
            while c.get_model_batch_job_status(job, ds, ds).status != "FAILED":
                assert time.monotonic() < deadline
                time.sleep(0.1)
            fault()
        assert fault.lifted is (mode == "once")
        assert b.admin("GET", "/admin/faults")["fail_jobs_for_joins"] == ([] if mode == "once" else [QR_NAME])
    finally:
        b.stop()
