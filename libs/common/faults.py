"""Failpoints for the fault tests: ``KHAIBAO_FAILPOINT=<name>`` kills the process there.

Read once at start; in normal operation this is one dict lookup that finds nothing.
The fault suite uses it to stop a process at the exact worst moment (between a commit
and a publish, between a handler's commit and the offset commit), as a crash would.
"""
from __future__ import annotations

import os
import signal

_armed = frozenset(filter(None, os.environ.get("KHAIBAO_FAILPOINT", "").split(",")))


def failpoint(name: str) -> None:
    if name in _armed:
        os.kill(os.getpid(), signal.SIGKILL)
