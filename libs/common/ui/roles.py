"""Human-readable, translated labels of the officials' roles."""
from __future__ import annotations

from .i18n import N_, gettext

ROLE_LABELS: dict[str, str] = {
    "city_dic": N_("City DIC officer"),
    "district_focal": N_("District focal point"),
    "commune_focal": N_("Commune focal point"),
    "health_officer": N_("District health center officer"),
    "unit_admin": N_("Unit administrator"),
    "gate_staff": N_("Gate staff"),
    "interop_client": N_("Interoperability client"),
}


def role_label(role: str, lang: str | None = None) -> str:
    """The label of ``role`` in ``lang`` (default: the current request's language).

    An unknown role is returned unchanged, so a new role shows its code rather than
    nothing.
    """
    source = ROLE_LABELS.get(role)
    if source is None:
        return role
    return gettext(source, lang)
