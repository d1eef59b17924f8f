"""The UI in a real browser: Debian's Chromium (no browser download) driven by Playwright, against
the live stack of ``live_stack.py``. Screenshots go to ``test-artifacts/``.

Skipped, with the reason, only when Chromium is missing or cannot start.
"""
from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from chronon_demo.run import join_dag_id  # noqa: E402
from tests.support.live_stack import ARTIFACTS, BROKEN_PATH, BROWSER_DS, CONFIG_ERRORS_DAG, OK_JOIN  # noqa: E402

pytestmark = [pytest.mark.browser, pytest.mark.e2e, pytest.mark.timeout(600)]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SHOTS = ARTIFACTS / "browser"
TIMEOUT_MS = 30_000


@pytest.fixture(scope="module")
def browser():
    """Checked before the stack starts, so a machine without Chromium skips quickly."""
    from playwright.sync_api import Error, sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.skip(f"Chromium is not installed at {CHROMIUM} (apt-get install chromium; .ci/run does it)")
    with sync_playwright() as p:
        try:
            b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        except Error as e:
            pytest.skip(f"Chromium at {CHROMIUM} cannot start: {str(e).splitlines()[0]}")
        SHOTS.mkdir(parents=True, exist_ok=True)
        yield b
        b.close()


@pytest.fixture(scope="module")
def page(browser, live_stack):
    """A logged-in page (the simple auth manager's login form)."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    pg = context.new_page()
    base = live_stack.stack.ui_url
    pg.goto(base + "/")
    pg.wait_for_url(re.compile(r"/auth/login"))
    pg.screenshot(path=str(SHOTS / "01-login.png"))
    pg.get_by_label("Username").fill(live_stack.stack.state["user"])
    pg.get_by_label("Password").fill(live_stack.stack.password)
    pg.get_by_role("button", name="Sign in").click()
    pg.wait_for_url(lambda url: "/auth/login" not in url and url.startswith(base))
    yield pg
    context.close()


def test_login_lands_on_the_airflow_home(page, live_stack):
    from playwright.sync_api import expect

    expect(page.get_by_role("link", name=re.compile("Dags", re.I)).first).to_be_visible()
    page.screenshot(path=str(SHOTS / "02-home.png"))
    cookies = {c["name"] for c in page.context.cookies()}
    assert "_token" in cookies, cookies


def test_trigger_a_join_from_the_form_and_see_the_run(page, live_stack):
    from playwright.sync_api import expect

    dag_id = join_dag_id(OK_JOIN)
    run_id = f"browser_{int(time.time())}"
    base = live_stack.stack.ui_url
    page.goto(f"{base}/dags/{dag_id}")
    expect(page.get_by_text(dag_id).first).to_be_visible()
    page.screenshot(path=str(SHOTS / "03-join-dag.png"))

    page.get_by_role("button", name=re.compile("^Trigger")).first.click()
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_text("Start partition (ds)")).to_be_visible()
    dialog.locator("#element_start_ds").fill(BROWSER_DS)
    dialog.locator("#element_end_ds").fill(BROWSER_DS)
    dialog.get_by_role("button", name="Advanced Options").click()
    dialog.locator("input[name=dagRunId]").fill(run_id)
    page.screenshot(path=str(SHOTS / "04-trigger-form.png"))
    dialog.get_by_test_id("trigger-dag-submit").click()
    try:
        # Wait on what the UI and the API show, not on a fixed delay: on a loaded 2-core machine the
        # trigger request, the redirect and the runs table each take seconds.
        run = _wait_for_run(live_stack.client, dag_id, run_id, timeout=90)
        assert run["run_type"] == "manual"
        assert run["conf"] == {"start_ds": BROWSER_DS, "end_ds": BROWSER_DS}
        # The UI opens the new run's own page.
        page.wait_for_url(re.compile(re.escape(f"/runs/{run_id}")), timeout=60_000)
        expect(page.get_by_text(run_id).first).to_be_visible(timeout=60_000)
        page.screenshot(path=str(SHOTS / "05-run-page.png"))
        page.goto(f"{base}/dags/{dag_id}/runs")
        expect(page.get_by_text(run_id).first).to_be_visible(timeout=60_000)
        page.screenshot(path=str(SHOTS / "06-runs-list.png"))
    finally:
        # The run only had to appear: stop it (whatever failed above) so it computes no partitions
        # the end-to-end runs check.
        _stop_run(live_stack, dag_id, run_id)


def _wait_for_run(client, dag_id: str, run_id: str, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        try:
            return client.dag_run(dag_id, run_id)
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(1)


def _stop_run(live_stack, dag_id: str, run_id: str) -> None:
    """Mark the run failed once it exists (the trigger may still be in flight when a check failed),
    as an operator would from its page; a run already over is left as it is.

    Not deleted: Airflow's scheduler on SQLite holds no row locks, so a run deleted while a
    scheduler loop is working on it crashed the scheduler (StaleDataError flushing the run; or, the
    delete cascading to the landing deadline's callback between two reads, "Unknown Callback type:
    NoneType"), and every later run of the stack stayed queued. A state change is an update the
    scheduler's own update of the row simply follows."""
    try:
        run = _wait_for_run(live_stack.client, dag_id, run_id, timeout=60)
    except Exception:
        return  # never created: nothing to stop
    if run["state"] not in ("success", "failed"):
        live_stack.client.set_dag_run_state(dag_id, run_id, "failed", note="browser test: stopped after its checks")


def test_chronon_page_lists_the_config_error(page, live_stack):
    from playwright.sync_api import expect

    base = live_stack.stack.ui_url
    # The page itself (the plugin's FastAPI app), with the UI's session cookie.
    page.goto(f"{base}/chronon/")
    errors = page.locator("div.errors")
    expect(errors.get_by_text(BROKEN_PATH)).to_be_visible()
    expect(errors.get_by_text(re.compile("invalid JSON"))).to_be_visible()
    expect(page.get_by_text("1 config error.")).to_be_visible()
    page.screenshot(path=str(SHOTS / "07-chronon-page.png"), full_page=True)

    # In the UI: the nav entry's view frames the same page.
    page.goto(f"{base}/plugin/chronon")
    frame = page.frame_locator("iframe").first
    expect(frame.locator("div.errors").get_by_text(BROKEN_PATH)).to_be_visible()
    expect(frame.get_by_role("link", name=join_dag_id(OK_JOIN)).first).to_be_visible()
    page.screenshot(path=str(SHOTS / "08-chronon-in-ui.png"))

    # The config-errors DAG stands for the broken file in the DAG list.
    page.goto(f"{base}/dags/{CONFIG_ERRORS_DAG}")
    expect(page.get_by_text(CONFIG_ERRORS_DAG).first).to_be_visible()
    page.screenshot(path=str(SHOTS / "09-config-errors-dag.png"))
