"""The task that stands for one broken config file in the ``chronon.config_errors`` DAG.

The DAG is active from its creation and runs on a schedule while the repo has broken files; each
run fails visibly, one failed task per broken file. Each task's failure e-mails the maintainers of
the team owning the file, but only when the file's errors changed since the last run that reported
them (a fingerprint of the errors is kept in the task's XCom), so a broken file costs one e-mail per
change, not one per run.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException

FINGERPRINT_XCOM_KEY = "errors_fingerprint"


def fingerprint(errors: list[dict[str, str]]) -> str:
    """The same for the same set of errors, whatever their order."""
    canonical = sorted(json.dumps(e, sort_keys=True) for e in errors)
    return hashlib.sha256("\n".join(canonical).encode()).hexdigest()[:16]


class ConfigErrorOperator(BaseOperator):
    """Fails with the file's config errors. It exists so that each broken file has a row in the
    Airflow UI and its team hears about it; running it only repeats what ``chronon-airflow validate``
    says. ``should_alert(context)`` (read by the failure notifier): whether these errors differ from
    the ones the previous run reported."""

    template_fields: Sequence[str] = ()  # messages quote config strings: never render them
    ui_color = "#f8d7da"

    def __init__(self, *, errors: list[dict[str, str]], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.errors = errors
        self.doc_md = "\n".join(f"- `{e['field'] or '(file)'}`: {e['message']}" for e in errors)
        self._changed: bool | None = None

    def _previous(self, context: Any) -> Any:
        ti = context["ti"]
        try:
            found = ti.xcom_pull(task_ids=ti.task_id, key=FINGERPRINT_XCOM_KEY, include_prior_dates=True)
        except Exception as e:  # e.g. a run without a logical date: report rather than stay silent
            self.log.info("no earlier report of this file found (%s)", e)
            return None
        # With two or more earlier runs Airflow returns every one's value, the latest run first.
        if isinstance(found, list):
            return found[0] if found else None
        return found

    def execute(self, context: Any) -> None:
        current = fingerprint(self.errors)
        previous = self._previous(context)
        self._changed = previous != current
        context["ti"].xcom_push(key=FINGERPRINT_XCOM_KEY, value=current)
        self.log.info("errors fingerprint %s (previous report: %s): %s", current, previous or "none",
                      "e-mailing the maintainers" if self._changed else "already reported, no e-mail")
        raise AirflowFailException("; ".join(f"{e['path']}: {e['field'] or '<file>'}: {e['message']}"
                                             for e in self.errors))

    def should_alert(self, context: Any) -> bool:
        return self._changed is not False
