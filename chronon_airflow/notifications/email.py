"""The package's one e-mail builder and sender: every chronon-airflow e-mail (a task's final failure,
a join's failed registration in the metadata upload, a missed landing deadline) is an
:class:`Email`, sent as ``multipart/alternative`` with a plain-text and an HTML part.

Nothing here renders a template: every value (a config name, an error message, a URL) is placed
as text and HTML-escaped, and only absolute http(s) URLs without user info become hyperlinks, so a
hostile config string can neither run in a mail client nor forge a link. Sending goes through the
smtp provider's hook (connection ``[chronon] smtp_conn_id``), whose retry and TLS settings apply;
the provider is imported only when a message is sent.
"""
from __future__ import annotations

import html
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from chronon_airflow import settings

_EMAIL = re.compile(r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+$")
_URL = re.compile(r"^https?://", re.IGNORECASE)


def valid_recipients(addresses: Iterable[str]) -> list[str]:
    """Drop anything that is not a plain address: recipients come from configs."""
    return list(dict.fromkeys(a for a in addresses if isinstance(a, str) and _EMAIL.match(a)))


def _safe_url(url: str) -> str:
    from chronon_airflow.links.model_backend import safe_http_url

    return safe_http_url(url) if isinstance(url, str) and _URL.match(url.strip()) else ""


@dataclass
class Email:
    """One message: a heading, a table of facts, what to do, links and detail lines."""

    subject: str
    title: str
    rows: Sequence[tuple[str, str]] = ()
    action: str = ""  # "What to do": the exact recovery action
    links: Sequence[tuple[str, str]] = ()  # (label, URL or plain text when there is no URL)
    details: Sequence[str] = ()  # bullet lines (e.g. one per failed call)
    details_title: str = ""
    footer: str = field(default="Sent by chronon-airflow.")

    def text(self) -> str:
        width = max((len(k) for k, _ in self.rows), default=0)
        out = [self.title, "=" * len(self.title), ""]
        out += [f"{k + ':':<{width + 1}} {v}" for k, v in self.rows]
        if self.action:
            out += ["", "What to do", "----------", self.action]
        if self.details:
            out += ["", self.details_title or "Details", ""] + [f"- {d}" for d in self.details]
        if self.links:
            out += ["", "Links", "-----"] + [f"{label}: {url}" for label, url in self.links]
        return "\n".join(out + ["", "--", self.footer, ""])

    def html(self) -> str:
        e = html.escape
        parts = [f"<h3>{e(self.title)}</h3>"]
        if self.rows:
            parts.append("<table>" + "".join(
                f"<tr><th align='left' valign='top'>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in self.rows)
                + "</table>")
        if self.action:
            parts.append(f"<h4>What to do</h4><p>{e(self.action)}</p>")
        if self.details:
            parts.append(f"<h4>{e(self.details_title or 'Details')}</h4><ul>"
                         + "".join(f"<li>{e(d)}</li>" for d in self.details) + "</ul>")
        if self.links:
            items = []
            for label, url in self.links:
                safe = _safe_url(url)
                items.append(f"<li>{e(label)}: <a href=\"{e(safe)}\">{e(safe)}</a></li>" if safe
                             else f"<li>{e(label)}: {e(url)}</li>")
            parts.append("<h4>Links</h4><ul>" + "".join(items) + "</ul>")
        parts.append(f"<p><small>{e(self.footer)}</small></p>")
        return "".join(parts)


def _hook_class() -> type:
    """The smtp provider's hook, sending a plain-text part before the HTML one (the provider's own
    builder writes HTML only)."""
    from email.mime.text import MIMEText

    from airflow.providers.smtp.hooks.smtp import SmtpHook

    class _AlternativeSmtpHook(SmtpHook):
        text: str = ""

        def _build_mime_message(self, *args: Any, **kwargs: Any):
            msg, recipients = super()._build_mime_message(*args, **kwargs)
            if self.text:
                charset = kwargs.get("mime_charset", "utf-8")
                parts = msg.get_payload()
                msg.set_payload([MIMEText(self.text, "plain", charset), *parts])
            return msg, recipients

    return _AlternativeSmtpHook


def _kwargs(message: Email, to: list[str], from_email: str | None) -> dict[str, Any]:
    return {"to": to, "subject": message.subject, "html_content": message.html(),
            "from_email": from_email or settings.get("email_from"), "mime_subtype": "alternative"}


def _hook(message: Email, smtp_conn_id: str | None) -> Any:
    hook = _hook_class()(smtp_conn_id=smtp_conn_id or settings.get("smtp_conn_id"))
    hook.text = message.text()
    return hook


def send(message: Email, to: Iterable[str], *, smtp_conn_id: str | None = None,
         from_email: str | None = None) -> list[str]:
    """Send ``message`` to the valid addresses of ``to``; returns them (nothing is sent to none)."""
    recipients = valid_recipients(to)
    if recipients:
        with _hook(message, smtp_conn_id) as hook:
            hook.send_email_smtp(**_kwargs(message, recipients, from_email))
    return recipients


async def asend(message: Email, to: Iterable[str], *, smtp_conn_id: str | None = None,
                from_email: str | None = None) -> list[str]:
    """:func:`send` for an event loop (the triggerer runs deadline callbacks in one)."""
    recipients = valid_recipients(to)
    if recipients:
        async with _hook(message, smtp_conn_id) as hook:
            await hook.asend_email_smtp(**_kwargs(message, recipients, from_email))
    return recipients
