"""Logs, traces and metrics.

Log lines carry the trace id of the request or event being handled; the same id travels
inside every event the request causes. They are JSON (one object a line, for the log
collector) or, for a person at a terminal, one readable line each (``KHAIBAO_LOG_FORMAT``,
see ``log_format_for``). Metrics are labelled by route template (never by raw path or
user data).
"""
from __future__ import annotations

import json
import logging
import os
import sys
import time
import uuid
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import TextIO

from prometheus_client import Counter, Gauge, Histogram

_trace_id: ContextVar[str | None] = ContextVar("khaibao_trace_id", default=None)
TRACE_HEADER = "x-trace-id"


def current_trace_id() -> str | None:
    return _trace_id.get()


def set_trace_id(value: str | None):
    return _trace_id.set(value)


def reset_trace_id(token) -> None:  # noqa: ANN001
    _trace_id.reset(token)


def new_trace_id() -> str:
    return uuid.uuid4().hex


# Fields a log call may add with ``extra=`` (events and consumers); both formats show them.
EVENT_FIELDS = ("event_id", "event_type", "consumer", "topic",
                # account security events (services/provisioning/signins/)
                "account_event", "outcome", "account_id", "client_address")


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "service": self.service,
            "logger": record.name,
            "msg": record.getMessage(),
            "trace_id": current_trace_id(),
        }
        for key in EVENT_FIELDS:
            if hasattr(record, key):
                entry[key] = getattr(record, key)
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """One line a person can read: ``14:02:07.513 WARNING declaration  message  [trace …]``.

    Local time to the millisecond, the level, the service, the message, then the trace id
    (shortened) and the event fields when there are any; a traceback follows on its own lines.
    """

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        moment = datetime.fromtimestamp(record.created)
        line = (f"{moment:%H:%M:%S}.{moment.microsecond // 1000:03d} {record.levelname:<7} "
                f"{self.service:<12} {record.getMessage()}")
        context = []
        trace_id = current_trace_id()
        if trace_id:
            context.append(f"trace={trace_id[:12]}")
        context.extend(f"{key}={getattr(record, key)}" for key in EVENT_FIELDS if hasattr(record, key))
        if context:
            line = f"{line}  [{' '.join(context)}]"
        if record.exc_info:
            line = f"{line}\n{self.formatException(record.exc_info)}"
        return line


LOG_FORMATS = {"json": JsonFormatter, "text": TextFormatter}


def log_format_for(setting: str | None, environment: str, stream: TextIO | None = None) -> str:
    """The log format: the setting when given (``json`` or ``text``); otherwise ``text`` for
    a person at a terminal outside production, and ``json`` for everything else (containers,
    files, pipes, and production always)."""
    if setting:
        return setting
    stream = sys.stderr if stream is None else stream
    try:
        interactive = stream.isatty()
    except (AttributeError, ValueError):
        interactive = False
    return "text" if interactive and environment != "production" else "json"


def setup_logging(service: str, level: str = "INFO", log_format: str = "json") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(LOG_FORMATS[log_format](service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    # Access logs would carry raw paths (venue codes, query strings): the metrics cover them.
    logging.getLogger("uvicorn.access").disabled = True
    # While a broker is away aiokafka logs every retry; the relay and the consumer report
    # the outage themselves, with backoff, so only aiokafka's critical messages pass.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    # SQL parameters may hold personal data or password hashes: never log them.
    logging.getLogger("sqlalchemy").setLevel(logging.WARNING)
    logging.getLogger("aiosqlite").setLevel(logging.WARNING)
    logging.getLogger("asyncpg").setLevel(logging.WARNING)


# --- metrics -------------------------------------------------------------------------

HTTP_REQUESTS = Counter(
    "khaibao_http_requests_total", "HTTP requests by route template",
    ["service", "method", "route", "status"],
)
HTTP_LATENCY = Histogram(
    "khaibao_http_request_duration_seconds", "HTTP request latency by route template",
    ["service", "method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
EVENTS_PUBLISHED = Counter("khaibao_events_published_total", "Events relayed to the bus", ["service", "type"])
EVENTS_CONSUMED = Counter(
    "khaibao_events_consumed_total", "Events handled by a consumer", ["service", "consumer", "type"]
)
EVENTS_FAILED = Counter(
    "khaibao_events_failed_total", "Handler failures (each attempt)", ["service", "consumer", "type"]
)
EVENTS_DEAD_LETTERED = Counter(
    "khaibao_events_dead_lettered_total", "Events sent to the dead-letter topic",
    ["service", "consumer", "type"],
)
OUTBOX_BACKLOG = Gauge(
    "khaibao_outbox_backlog", "Outbox rows not yet published", ["service"], multiprocess_mode="max"
)
CONSUMER_LAG = Gauge(
    "khaibao_consumer_lag", "Messages behind the end of the topic", ["service", "consumer", "topic"],
    multiprocess_mode="max",
)
RETENTION_ERASED = Counter(
    "khaibao_retention_erased_total",
    "Records whose personal data the retention loop erased (declarations, visits, alerts)", ["service"],
)


class ObservabilityMiddleware:
    """Pure ASGI middleware: trace id in and out, request metrics by route template."""

    def __init__(self, app, service: str) -> None:  # noqa: ANN001
        self.app = app
        self.service = service

    async def __call__(self, scope, receive, send):  # noqa: ANN001
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = None
        for name, value in scope.get("headers", ()):
            if name == b"x-trace-id":
                incoming = value.decode("latin-1")[:64]
                break
        trace_id = incoming if incoming and incoming.replace("-", "").isalnum() else new_trace_id()
        token = set_trace_id(trace_id)
        status = 500
        started = time.perf_counter()

        async def send_wrapper(message):  # noqa: ANN001
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-trace-id", trace_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            method = scope.get("method", "GET")
            HTTP_REQUESTS.labels(self.service, method, template, str(status)).inc()
            HTTP_LATENCY.labels(self.service, method, template).observe(time.perf_counter() - started)
            reset_trace_id(token)
