"""The task that stands for one broken config file in the ``chronon.config_errors`` DAG."""
from __future__ import annotations

from typing import Any, Sequence

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException


class ConfigErrorOperator(BaseOperator):
    """Fails with the file's config errors. It exists so that each broken file has a row in the
    Airflow UI; running it only repeats what ``chronon-airflow validate`` says."""

    template_fields: Sequence[str] = ()  # messages quote config strings: never render them
    ui_color = "#f8d7da"

    def __init__(self, *, errors: list[dict[str, str]], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.errors = errors
        self.doc_md = "\n".join(f"- `{e['field'] or '(file)'}`: {e['message']}" for e in errors)

    def execute(self, context: Any) -> None:
        raise AirflowFailException("; ".join(f"{e['path']}: {e['field'] or '<file>'}: {e['message']}"
                                             for e in self.errors))
