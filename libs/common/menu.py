"""The consoles' shared menu: one table of (service, page, label, roles).

The same table decides what a role sees in the menu and what the page's route admits:
each linked page takes its roles with ``menu_roles(service, path)``, so a link is shown
exactly to the roles its server lets in (issue 18.3: gate staff and unit administrators
were offered intake and the area reports, which answer 403).
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from .auth import OFFICIALS, UNIT_ROLES, Role
from .ui.i18n import N_

CONSOLE_ROLES = OFFICIALS | UNIT_ROLES


@dataclass(frozen=True)
class MenuLink:
    service: str
    path: str
    label: str  # a msgid, translated where the menu is drawn
    roles: frozenset[Role]

    def admits(self, role: str | None) -> bool:
        return role is not None and role in self.roles


# In the order the menu shows them. Labels of the five consoles: the services' titles
# (English msgids, translated by the common catalogue in the page's language).
MENU: tuple[MenuLink, ...] = (
    MenuLink("intake", "/", N_("Registration intake"), OFFICIALS),
    MenuLink("provisioning", "/", N_("Accounts and QR codes"), CONSOLE_ROLES),
    MenuLink("declaration", "/", N_("Health declaration"), CONSOLE_ROLES),
    MenuLink("notification", "/", N_("Notifications and Support Channel"), CONSOLE_ROLES),
    MenuLink("reporting", "/", N_("Reports and statistics"), OFFICIALS),
    MenuLink("reporting", "/unit", N_("My unit"), frozenset({Role.UNIT_ADMIN})),
)


def menu_roles(service: str, path: str) -> tuple[Role, ...]:
    """The roles a menu page admits, for its route's ``console_user(...)``: the same
    roles that see its link."""
    for link in MENU:
        if link.service == service and link.path == path:
            return tuple(sorted(link.roles))
    raise KeyError(f"{service} {path} is not in the menu")


@dataclass(frozen=True)
class NavLink:
    """A menu link with its absolute address; the page template shows it to the roles it
    admits (libs/common/ui/templates.py)."""
    label: str
    url: str
    roles: frozenset[Role]

    def admits(self, role: str | None) -> bool:
        return role is not None and role in self.roles


def nav_links(service_urls: Mapping[str, str], links: Iterable[MenuLink] = MENU) -> list[NavLink]:
    return [NavLink(link.label, service_urls.get(link.service, "#").rstrip("/") + link.path, link.roles)
            for link in links]


def menu_for(role: str | None, service_urls: Mapping[str, str]) -> list[tuple[str, str]]:
    """(label, url) of the links ``role`` may open; nothing for no role (a visitor)."""
    return [(link.label, link.url) for link in nav_links(service_urls) if link.admits(role)]
