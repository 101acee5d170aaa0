"""What a running service holds: settings, database, bus, token verifier, admin-unit tree."""
from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from .adminunits import AdminTree, load_tree
from .auth import AuthError, TokenVerifier, load_public_key
from .bus import Bus
from .db import Database
from .lifecycle import pause
from .sessions import SessionRevocations
from .settings import ServiceSettings


def default_key_paths(settings: ServiceSettings) -> tuple[Path, Path]:
    keys = settings.data_dir / "keys"
    return keys / "token-private.pem", keys / "token-public.pem"


@dataclass
class Runtime:
    settings: ServiceSettings
    database: Database
    bus: Bus
    extras: dict = field(default_factory=dict)
    # Set at shutdown: background loops finish their unit of work and return (lifecycle.py).
    stopping: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def service(self) -> str:
        return self.settings.service_name

    async def pause(self, seconds: float, *wake: asyncio.Event) -> bool:
        """A worker's wait between iterations: ``seconds``, or until woken or stopped;
        True when the service is stopping."""
        return await pause(self.stopping, seconds, *wake)

    @cached_property
    def tree(self) -> AdminTree:
        file = str(self.settings.admin_units_file) if self.settings.admin_units_file else None
        return load_tree(file, self.settings.admin_units_root)

    @property
    def sessions(self) -> SessionRevocations:
        """The session revocations this process refuses tokens by (libs/common/sessions.py)."""
        sessions = self.extras.get("sessions")
        if sessions is None:
            sessions = self.extras["sessions"] = SessionRevocations()
        return sessions

    @property
    def verifier(self) -> TokenVerifier:
        # Loaded on first use: in the local run provisioning may write the key just after us.
        verifier = self.extras.get("verifier")
        if verifier is None:
            path = self.settings.auth_public_key_file or default_key_paths(self.settings)[1]
            if not Path(path).exists():
                raise AuthError("Dịch vụ xác thực chưa sẵn sàng / Sign-in is not available yet")
            previous = [load_public_key(Path(p)) for p in self.settings.auth_previous_public_key_files]
            verifier = TokenVerifier(load_public_key(Path(path)), issuer=self.settings.auth_issuer,
                                     audience=self.settings.auth_audience, previous=previous)
            self.extras["verifier"] = verifier
        return verifier
