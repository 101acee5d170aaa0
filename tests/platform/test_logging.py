"""Log formats: JSON for collectors, one readable line for a person at a terminal."""
from __future__ import annotations

import io
import json
import logging
import re
import sys

import pytest

from libs.common.cli import _services_log_format
from libs.common.observability import (
    JsonFormatter, TextFormatter, log_format_for, reset_trace_id, set_trace_id, setup_logging,
)
from libs.common.settings import CommonSettings


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _record(message: str = "declaration %s stored", *args, exc_info=None, **extra) -> logging.LogRecord:
    record = logging.LogRecord("services.declaration", logging.WARNING, __file__, 1, message,
                               args or ("abc",), exc_info)
    for key, value in extra.items():
        setattr(record, key, value)
    return record


def test_json_format_is_one_object_with_trace_and_event_fields():
    token = set_trace_id("4f1c2a9b8e7d6c5b4a39281706f5e4d3")
    try:
        line = JsonFormatter("declaration").format(_record(event_type="declaration.submitted", consumer="c1"))
    finally:
        reset_trace_id(token)
    entry = json.loads(line)
    assert entry["level"] == "WARNING" and entry["service"] == "declaration"
    assert entry["msg"] == "declaration abc stored"
    assert entry["trace_id"] == "4f1c2a9b8e7d6c5b4a39281706f5e4d3"
    assert entry["event_type"] == "declaration.submitted" and entry["consumer"] == "c1"


def test_text_format_is_one_readable_line():
    token = set_trace_id("4f1c2a9b8e7d6c5b4a39281706f5e4d3")
    try:
        line = TextFormatter("declaration").format(_record(event_type="declaration.submitted"))
    finally:
        reset_trace_id(token)
    assert "\n" not in line
    assert re.fullmatch(r"\d\d:\d\d:\d\d\.\d{3} WARNING +declaration +declaration abc stored"
                        r"  \[trace=4f1c2a9b8e7d event_type=declaration\.submitted\]", line), line


def test_text_format_without_context_and_with_an_exception():
    assert TextFormatter("intake").format(_record("ready %s", "now")).endswith("intake       ready now")
    try:
        raise ValueError("boom")
    except ValueError:
        line = TextFormatter("intake").format(_record("failed %s", "now", exc_info=sys.exc_info()))
    first, *rest = line.splitlines()
    assert first.endswith(" failed now")
    assert rest[0].startswith("Traceback") and rest[-1] == "ValueError: boom"


def test_automatic_format_text_only_for_a_terminal_outside_production():
    assert log_format_for(None, "development", Terminal()) == "text"
    assert log_format_for(None, "test", Terminal()) == "text"
    assert log_format_for(None, "development", io.StringIO()) == "json"
    assert log_format_for(None, "production", Terminal()) == "json"


def test_the_setting_overrides_the_automatic_choice():
    assert log_format_for("json", "development", Terminal()) == "json"
    assert log_format_for("text", "production", io.StringIO()) == "text"


def test_setting_from_the_environment(monkeypatch):
    monkeypatch.delenv("KHAIBAO_LOG_FORMAT", raising=False)
    assert CommonSettings().log_format is None
    for value, expected in (("text", "text"), ("JSON", "json"), ("auto", None), ("", None)):
        monkeypatch.setenv("KHAIBAO_LOG_FORMAT", value)
        assert CommonSettings().log_format == expected, value
    monkeypatch.setenv("KHAIBAO_LOG_FORMAT", "xml")
    with pytest.raises(ValueError):
        CommonSettings()


def test_production_defaults_to_json(monkeypatch):
    monkeypatch.delenv("KHAIBAO_LOG_FORMAT", raising=False)
    settings = CommonSettings(environment="production", secret_key="s" * 40, auth_public_key_file="/k.pem")
    assert log_format_for(settings.log_format, settings.environment, Terminal()) == "json"


def test_setup_logging_installs_the_chosen_formatter():
    root = logging.getLogger()
    saved, level = root.handlers[:], root.level
    try:
        setup_logging("reporting", "INFO", "text")
        assert isinstance(root.handlers[0].formatter, TextFormatter)
        setup_logging("reporting", "INFO")
        assert isinstance(root.handlers[0].formatter, JsonFormatter)
    finally:
        root.handlers[:] = saved
        root.setLevel(level)


def test_khaibao_up_gives_its_services_text_on_a_terminal_unless_told():
    assert _services_log_format({}, Terminal()) == "text"
    assert _services_log_format({}, io.StringIO()) == "json"
    assert _services_log_format({"KHAIBAO_LOG_FORMAT": "json"}, Terminal()) == "json"
    assert _services_log_format({"KHAIBAO_LOG_FORMAT": "auto"}, Terminal()) == "text"
