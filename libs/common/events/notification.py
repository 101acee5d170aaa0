"""Events produced by the notification service (deliveries, Support Channel, alerts)."""
from __future__ import annotations
