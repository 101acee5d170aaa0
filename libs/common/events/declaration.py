"""Events produced by the declaration service (declarations, screening, gate actions)."""
from __future__ import annotations
