"""The demo mailbox of ``khaibao up``: a local SMTP catcher and the messages it keeps.

``khaibao up`` points notification's and intake's SMTP settings at a catcher on the
loopback interface (unless a real relay is configured), so that every e-mail the system
sends during a demo (credentials, alerts, replies to lists) can be read on the landing
page's "Hộp thư thử / Demo mailbox" instead of being refused by a port where nothing
listens. Each message is one ``.eml`` file in ``<data dir>/mailbox``, deleted after
KHAIBAO_DATA_RETENTION_DAYS like every other store of personal data.

Development only: the catcher accepts any message from the local machine.
"""
from __future__ import annotations

import asyncio
import logging
import os
import re
import secrets
import socket
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import parsedate_to_datetime
from pathlib import Path

log = logging.getLogger(__name__)

MAILBOX_DIR = "mailbox"
MESSAGE_ID = re.compile(r"^\d{16}-[0-9a-f]{12}$")
PRUNE_INTERVAL_SECONDS = 3600.0


@dataclass(frozen=True)
class StoredMail:
    id: str
    received_at: datetime
    subject: str
    sender: str
    recipients: str
    text: str = ""


class MailStore:
    """The ``.eml`` files of one folder; ids are ``<received µs>-<random>`` (never a path)."""

    def __init__(self, directory: Path, retention_days: float) -> None:
        self.directory = Path(directory)
        self.retention_seconds = retention_days * 86_400
        self._pruned_at = 0.0

    def save(self, content: bytes, recipients: list[str], *, now: float | None = None) -> str:
        """Store one message (its envelope recipients in an ``X-Khaibao-To`` header when the
        message itself names none); its id."""
        now = time.time() if now is None else now
        self.directory.mkdir(parents=True, exist_ok=True)
        mail_id = f"{int(now * 1_000_000):016d}-{secrets.token_hex(6)}"
        header = f"X-Khaibao-Envelope-To: {', '.join(recipients)}\r\n".encode() if recipients else b""
        partial = self.directory / f".{mail_id}.tmp"
        partial.write_bytes(header + content)
        os.replace(partial, self.directory / f"{mail_id}.eml")
        if now - self._pruned_at > PRUNE_INTERVAL_SECONDS:
            self.prune(now=now)
        return mail_id

    def prune(self, *, now: float | None = None) -> int:
        """Delete the messages older than the retention period; how many."""
        now = time.time() if now is None else now
        self._pruned_at = now
        cutoff = now - self.retention_seconds
        deleted = 0
        for path in self.directory.glob("*.eml") if self.directory.is_dir() else ():
            if self._received(path.stem) < cutoff:
                path.unlink(missing_ok=True)
                deleted += 1
        if deleted:
            log.info("demo mailbox: %d messages older than the retention period deleted", deleted)
        return deleted

    @staticmethod
    def _received(mail_id: str) -> float:
        return int(mail_id.split("-", 1)[0]) / 1_000_000

    def list(self, limit: int = 500) -> list[StoredMail]:
        """The newest messages first (headers only)."""
        if not self.directory.is_dir():
            return []
        names = sorted((p.stem for p in self.directory.glob("*.eml") if MESSAGE_ID.match(p.stem)), reverse=True)
        found = []
        for mail_id in names[:limit]:
            mail = self.get(mail_id, with_text=False)
            if mail is not None:
                found.append(mail)
        return found

    def get(self, mail_id: str, *, with_text: bool = True) -> StoredMail | None:
        if not MESSAGE_ID.match(mail_id):
            return None
        path = self.directory / f"{mail_id}.eml"
        try:
            raw = path.read_bytes()
        except OSError:
            return None
        message: EmailMessage = BytesParser(policy=policy.default).parsebytes(raw)  # type: ignore[assignment]
        received = datetime.fromtimestamp(self._received(mail_id), UTC)
        with_date = message.get("Date")
        if with_date:
            try:
                received = parsedate_to_datetime(str(with_date)).astimezone(UTC)
            except (TypeError, ValueError):
                pass
        recipients = str(message.get("To") or message.get("X-Khaibao-Envelope-To") or "")
        return StoredMail(id=mail_id, received_at=received, subject=str(message.get("Subject") or ""),
                          sender=str(message.get("From") or ""), recipients=recipients,
                          text=text_of(message) if with_text else "")


def text_of(message: EmailMessage) -> str:
    """The plain-text part (what a mail reader shows without HTML); never the HTML itself."""
    body = message.get_body(preferencelist=("plain",))
    if body is not None:
        try:
            return str(body.get_content())
        except (LookupError, ValueError):
            return ""
    return ""


class _Handler:
    def __init__(self, store: MailStore) -> None:
        self.store = store

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: ANN001, N802 - aiosmtpd's hook
        content = envelope.original_content or envelope.content
        if isinstance(content, str):
            content = content.encode()
        await asyncio.to_thread(self.store.save, content, list(envelope.rcpt_tos))
        return "250 Message accepted for delivery"


class MailCatcher:
    """aiosmtpd on ``host`` (a free port unless given), in a thread of its own."""

    def __init__(self, store: MailStore, host: str = "127.0.0.1", port: int = 0) -> None:
        self.store = store
        self.host = host
        self.sock = socket.create_server((host, port))
        self.port = self.sock.getsockname()[1]
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="demo-mailbox", daemon=True)
        self._server: asyncio.base_events.Server | None = None

    def _run(self) -> None:
        from aiosmtpd.smtp import SMTP

        asyncio.set_event_loop(self._loop)
        handler = _Handler(self.store)
        self._server = self._loop.run_until_complete(self._loop.create_server(
            lambda: SMTP(handler, hostname="khaibao-demo-mailbox", enable_SMTPUTF8=True, loop=self._loop),
            sock=self.sock))
        self._ready.set()
        self._loop.run_forever()
        self._server.close()
        self._loop.run_until_complete(self._server.wait_closed())
        self._loop.close()

    def start(self) -> "MailCatcher":
        self.store.prune()
        self._thread.start()
        self._ready.wait(10)
        return self

    def stop(self) -> None:
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)
