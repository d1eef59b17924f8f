"""Per-team metadata upload: re-register every model and model transform of a team's joins.

One task registers all of the team's joins concurrently (bounded by ``[chronon]
registration_concurrency``): a task per join would spend more time starting Python processes than
talking to the backend. A join whose registration fails does not stop the others; its owners get an
e-mail with the backend's message, and the task fails at the end naming every failed join.
"""
from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowException

from chronon_airflow import settings
from chronon_airflow.backend.http import AsyncHttpModelBackend
from chronon_airflow.backend.registration import aregister_join
from chronon_airflow.config.loader import load_file, parse_join
from chronon_airflow.config.model import JoinConf
from chronon_airflow.exceptions import InvalidConfig
from chronon_airflow.hooks.model_backend import ModelBackendHook
from chronon_airflow.lineage import ChrononLineageMixin


@dataclass
class JoinRegistration:
    join: str
    path: str
    owners: list[str]
    ok: bool = True
    steps: list[str] = field(default_factory=list)  # "model query_encoder on reference: SUCCESS ..."
    failures: list[str] = field(default_factory=list)


class RegisterTeamModelTransformsOperator(ChrononLineageMixin, BaseOperator):
    """Registers the models and model transform of each join in ``join_paths`` (relative to
    ``repo_root``). XCom ``return_value``: ``{"registered": [...], "failed": {join: message}}``."""

    template_fields: Sequence[str] = ()
    ui_color = "#e8d5f5"

    def __init__(self, *, repo_root: str, join_paths: list[str], team_emails: list[str] | None = None,
                 concurrency: int | None = None, notify: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.repo_root = repo_root
        self.join_paths = list(join_paths)
        self.team_emails = list(team_emails or [])
        self.concurrency = concurrency
        self.notify = notify

    # --- loading ---------------------------------------------------------------------------

    def _load(self) -> tuple[list[JoinConf], list[JoinRegistration]]:
        joins, broken = [], []
        for rel in self.join_paths:
            try:
                join = load_file(Path(self.repo_root) / rel, rel, parse_join)
            except (InvalidConfig, OSError) as e:
                # The file changed since the DAG was parsed; report it like a failed registration.
                message = getattr(e, "message", None) or str(e)
                broken.append(JoinRegistration(rel, rel, self.team_emails, ok=False, failures=[f"{rel}: {message}"]))
                continue
            if join.transform_backend is None:
                # Its model transforms were removed since the DAG was parsed: nothing to register
                # (the next parse drops it from this task).
                self.log.info("%s (%s) has no model transforms any more: nothing to register", join.name, rel)
                continue
            joins.append(join)
        return joins, broken

    # --- registering -----------------------------------------------------------------------

    async def _register_all(self, joins: list[JoinConf], clients: dict[str, AsyncHttpModelBackend],
                            limit: int) -> list[JoinRegistration]:
        gate = asyncio.Semaphore(limit)

        async def one(join: JoinConf) -> JoinRegistration:
            result = JoinRegistration(join.name, join.path,
                                      list(dict.fromkeys(self.team_emails + list(join.metadata.owners()))))
            # The one registration routine (models, then the transform on the plan's backend rule).
            assert join.transform_backend is not None  # _load keeps only joins with model transforms
            for step in await aregister_join(join.thrift(), join.transform_backend, clients, gate):
                result.steps.append(str(step))
                if not step.ok:
                    result.ok = False
                    result.failures.append(str(step))
            return result

        return list(await asyncio.gather(*(one(j) for j in joins)))

    def _clients(self, joins: list[JoinConf]) -> tuple[dict[str, dict], dict[str, str]]:
        """Connection settings per backend, resolved before the event loop starts."""
        kwargs, missing = {}, {}
        for backend in sorted({b for j in joins for b in j.backends}):
            try:
                kwargs[backend] = ModelBackendHook(backend).connection_kwargs()
            except AirflowException as e:
                missing[backend] = str(e)
        return kwargs, missing

    async def _run(self, joins: list[JoinConf], kwargs: dict[str, dict], limit: int) -> list[JoinRegistration]:
        clients = {b: AsyncHttpModelBackend(**kw) for b, kw in kwargs.items()}
        try:
            return await self._register_all(joins, clients, limit)
        finally:
            await asyncio.gather(*(c.aclose() for c in clients.values()))

    def execute(self, context: Any) -> dict[str, Any]:
        joins, results = self._load()
        kwargs, missing = self._clients(joins)
        runnable = []
        for j in joins:
            absent = [b for b in j.backends if b in missing]
            if absent:
                results.append(JoinRegistration(j.name, j.path, self.team_emails, ok=False,
                                                failures=[missing[b] for b in absent]))
            else:
                runnable.append(j)
        limit = max(1, int(self.concurrency or settings.get("registration_concurrency")))
        results.extend(asyncio.run(self._run(runnable, kwargs, limit)))
        for r in results:
            for step in r.steps:
                self.log.info("%s: %s", r.join, step)
        failed = [r for r in results if not r.ok]
        for r in failed:
            self.log.error("%s (%s) failed: %s", r.join, r.path, "; ".join(r.failures))
            if self.notify:
                self._notify(r, context)
        summary = {"registered": sorted(r.join for r in results if r.ok),
                   "failed": {r.join: "; ".join(r.failures) for r in failed}}
        if failed:
            raise AirflowException(f"registration failed for {len(failed)} of {len(results)} joins: "
                                   + "; ".join(f"{r.join}: {' | '.join(r.failures)}" for r in failed))
        return summary

    def _notify(self, r: JoinRegistration, context: Any) -> None:
        from chronon_airflow.notifications.email import Email, send

        ti = context["ti"]
        message = Email(
            subject=f"[chronon] {r.join}: model registration failed",
            title="Chronon model registration failed",
            rows=[("Join", r.join), ("File", r.path), ("DAG", ti.dag_id), ("Task", ti.task_id), ("Run", ti.run_id)],
            action=(f"Fix the models or model transforms of {r.path} named below and recompile it; the next "
                    "metadata-upload run (every 20 minutes) registers them again. The team's other joins were "
                    "registered."),
            details=r.failures, details_title="What the backend said",
            links=[("Task log", getattr(ti, "log_url", "") or "(no log URL)")],
        )
        try:
            if not send(message, r.owners):
                self.log.warning("no recipients for %s; not e-mailed", r.join)
        except Exception as e:  # a mail outage must not hide the registration result itself
            self.log.error("could not e-mail %s about %s: %s", r.owners, r.join, e)
