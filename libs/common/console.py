"""Helpers for the officials' HTML consoles."""
from __future__ import annotations

from types import SimpleNamespace

from fastapi import Depends, Request

from .auth import Principal, Role, require
from .ui import role_label


def console_user(*roles: Role, password_change: bool = False, on_refusal=None):  # noqa: ANN001
    """Dependency for console pages: a signed-in principal of ``roles``, shown in the header
    (``on_refusal``: see ``require``)."""
    requirement = require(*roles, password_change=password_change, on_refusal=on_refusal)

    def dependency(request: Request, principal: Principal = Depends(requirement)) -> Principal:
        request.state.user = SimpleNamespace(
            name=principal.name, username=principal.username, role=str(principal.role),
            role_label=role_label(str(principal.role)), jurisdiction=principal.jurisdiction,
        )
        return principal

    return dependency
