"""Sign-in (issue 16): what guards it, what ends its sessions, and its history.

The entry point itself is ``tokens.sign_in``; the mechanisms it and the console use are here:

- ``throttle.py``: failed attempts slow down the places they come from (no lock-out);
- ``hashing.py``: argon2 in a bounded thread pool, off the event loop, answers padded;
- ``sessions.py``: ending one session or all of an account's (recorded and published);
- ``service.py``: the history, every sign-in and account security event on the record:
  ``record`` (the one function every path calls), the history queries and the retention
  loop; ``pages.py``: the ``/signins`` page and its .xlsx export. The table is
  ``models.SignInEvent`` (migration 0003).

The names below are the history's (``signins.record``); the others are imported from their
modules (``from .signins import throttle``).
"""
from .service import (
    ACCOUNT_EVENTS, EVENTS, OUTCOMES, SIGNINS, VIEWERS, Filters, prune, record, record_principal, retention_pass,
    run_retention,
)

__all__ = ["ACCOUNT_EVENTS", "EVENTS", "OUTCOMES", "SIGNINS", "VIEWERS", "Filters", "prune", "record",
           "record_principal", "retention_pass", "run_retention"]
