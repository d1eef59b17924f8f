"""Per-team metadata upload: re-register every model and model transform of a team's joins.

One task registers all of the team's joins concurrently (bounded by ``[chronon]
registration_concurrency``): a task per join would spend more time starting Python processes than
talking to the backend. A join whose registration fails does not stop the others; its owners get an
e-mail with the backend's message, and the task fails at the end naming every failed join.
"""
from __future__ import annotations

import asyncio
import html
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowException

from chronon_airflow import settings
from chronon_airflow.backend import join_models
from chronon_airflow.backend.http import AsyncHttpModelBackend
from chronon_airflow.backend.interface import BackendError
from chronon_airflow.backend.redact import redact_text, secret_values
from chronon_airflow.config.loader import Invalid, load_file, parse_join
from chronon_airflow.config.model import JoinConf
from chronon_airflow.hooks.model_backend import ModelBackendHook
from chronon_airflow.notifications.failure import valid_recipients


@dataclass
class JoinRegistration:
    join: str
    path: str
    owners: list[str]
    ok: bool = True
    steps: list[str] = field(default_factory=list)  # "model query_encoder on reference: SUCCESS ..."
    failures: list[str] = field(default_factory=list)


class RegisterTeamModelTransformsOperator(BaseOperator):
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
                joins.append(load_file(Path(self.repo_root) / rel, rel, parse_join))
            except (Invalid, OSError) as e:
                # The file changed since the DAG was parsed; report it like a failed registration.
                message = getattr(e, "message", None) or str(e)
                broken.append(JoinRegistration(rel, rel, self.team_emails, ok=False, failures=[f"{rel}: {message}"]))
        return joins, broken

    # --- registering -----------------------------------------------------------------------

    async def _register_all(self, joins: list[JoinConf], clients: dict[str, AsyncHttpModelBackend],
                            limit: int) -> list[JoinRegistration]:
        gate = asyncio.Semaphore(limit)

        async def call(coro_fn, *args):
            async with gate:
                return await coro_fn(*args)

        async def one(join: JoinConf) -> JoinRegistration:
            thrift = join.thrift()
            secrets = secret_values(thrift)
            result = JoinRegistration(join.name, join.path,
                                      list(dict.fromkeys(self.team_emails + list(join.metadata.owners()))))

            def record(what: str, backend: str, response=None, error: Exception | None = None) -> None:
                if error is not None:
                    text = redact_text(f"{what} on {backend}: {error}", secrets)
                    result.ok = False
                    result.failures.append(text)
                else:
                    text = redact_text(f"{what} on {backend}: {response.status} {response.message}".strip(), secrets)
                    if not response.is_success:
                        result.ok = False
                        result.failures.append(text)
                result.steps.append(text)

            models = {join_models.model_name(m): m for m in join_models.models(thrift)}
            outcomes = await asyncio.gather(
                *(call(clients[m.backend].register_model, models[m.name]) for m in join.models),
                return_exceptions=True)
            for model, outcome in zip(join.models, outcomes):
                if isinstance(outcome, BaseException):
                    record(f"registerModel {model.name}", model.backend, error=outcome)
                else:
                    record(f"registerModel {model.name}", model.backend, outcome)
            backend = join.transform_backend
            if result.ok:  # a transform cannot validate against models the backend rejected
                try:
                    record("registerModelTransform", backend,
                           await call(clients[backend].register_model_transform, thrift))
                except (BackendError, OSError) as e:
                    record("registerModelTransform", backend, error=e)
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
        from airflow.providers.smtp.hooks.smtp import SmtpHook

        to = valid_recipients(r.owners)
        if not to:
            self.log.warning("no recipients for %s; not e-mailed", r.join)
            return
        ti = context["ti"]
        body = (f"<p>Registering the model transform of <b>{html.escape(r.join)}</b> "
                f"(<code>{html.escape(r.path)}</code>) failed in {html.escape(ti.dag_id)}:</p><ul>"
                + "".join(f"<li>{html.escape(f)}</li>" for f in r.failures)
                + f"</ul><p>Log: <a href=\"{html.escape(ti.log_url)}\">{html.escape(ti.log_url)}</a></p>")
        try:
            with SmtpHook(smtp_conn_id=settings.get("smtp_conn_id")) as smtp:
                smtp.send_email_smtp(to=to, subject=f"[chronon] {r.join}: model registration failed",
                                     html_content=body, from_email=settings.get("email_from"))
        except Exception as e:  # a mail outage must not hide the registration result itself
            self.log.error("could not e-mail %s about %s: %s", to, r.join, e)
