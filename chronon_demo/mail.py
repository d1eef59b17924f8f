"""A local SMTP sink (aiosmtpd): accepts every message on loopback and saves it as ``<n>.eml``.

Run it as a process (``python -m chronon_demo.mail --port N --dir DIR``), as the demo
does, or in-process with :func:`start_sink`, as the end-to-end test does. :func:`read_messages`
parses the saved files back for summaries and assertions.
"""
from __future__ import annotations

import argparse
import email
import email.policy
import itertools
import os
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast


class SaveToDir:
    """aiosmtpd handler: one file per message, written atomically (temp file + rename)."""

    def __init__(self, directory: str | os.PathLike):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._counter = itertools.count(1)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 (aiosmtpd API)
        with self._lock:
            n = next(self._counter)
        name = f"{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}-{n:04d}.eml"
        tmp = self.directory / f".{name}.tmp"
        content = envelope.original_content or envelope.content
        if isinstance(content, str):
            content = content.encode("utf-8")
        rcpt = ", ".join(envelope.rcpt_tos)
        tmp.write_bytes(f"X-Envelope-From: {envelope.mail_from}\r\nX-Envelope-To: {rcpt}\r\n".encode() + content)
        tmp.rename(self.directory / name)
        return "250 Message accepted for delivery"


def start_sink(host: str, port: int, directory: str | os.PathLike):
    """Start an aiosmtpd server in a thread of this process; ``.stop()`` the returned controller."""
    from aiosmtpd.controller import Controller

    controller = Controller(SaveToDir(directory), hostname=host, port=port)
    controller.start()
    return controller


@dataclass
class Message:
    path: Path
    subject: str
    sender: str
    to: str
    body: str


def read_messages(directory: str | os.PathLike) -> list[Message]:
    """Saved messages, oldest first; ``body`` is the text of every text/* part (HTML included)."""
    out: list[Message] = []
    root = Path(directory)
    if not root.is_dir():
        return out
    for path in sorted(root.glob("*.eml")):
        msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        parts = []
        for part in msg.walk():
            if part.get_content_maintype() == "text":
                try:
                    parts.append(part.get_content())
                except (LookupError, ValueError):
                    # A text/* part is not multipart: decoded, its payload is bytes.
                    parts.append(cast(bytes, part.get_payload(decode=True)).decode("utf-8", "replace"))
        out.append(Message(path=path, subject=str(msg.get("Subject", "")), sender=str(msg.get("From", "")),
                           to=str(msg.get("To", "")), body="\n".join(parts)))
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--dir", required=True, help="where messages are saved")
    args = p.parse_args(argv)
    controller = start_sink(args.host, args.port, args.dir)
    print(f"SMTP sink on {args.host}:{args.port}, saving to {args.dir}", flush=True)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    controller.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
