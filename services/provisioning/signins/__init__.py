"""The sign-in history (issue 16): every sign-in and account security event on the record.

``service.py``: ``record`` (the one function every path calls), the history queries and
the retention loop; ``pages.py``: the ``/signins`` page and its .xlsx export. The table is
``models.SignInEvent`` (migration 0003).
"""
from .service import (
    ACCOUNT_EVENTS, EVENTS, OUTCOMES, SIGNINS, VIEWERS, Filters, prune, record, record_principal, retention_pass,
    run_retention,
)

__all__ = ["ACCOUNT_EVENTS", "EVENTS", "OUTCOMES", "SIGNINS", "VIEWERS", "Filters", "prune", "record",
           "record_principal", "retention_pass", "run_retention"]
