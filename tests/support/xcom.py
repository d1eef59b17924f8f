"""A stand-in for the task instance Airflow passes to ``execute()`` and to a link's ``get_link()``
in the worker: XCom push and pull on a plain dict keyed by (task_id, key)."""
from __future__ import annotations


class RecordingTI:
    def __init__(self, task_id: str, xcoms: dict):
        self.task_id, self.xcoms = task_id, xcoms

    def xcom_push(self, key, value):
        self.xcoms[(self.task_id, key)] = value

    def xcom_pull(self, task_ids=None, key="return_value", **_):
        return self.xcoms.get((task_ids, key))
