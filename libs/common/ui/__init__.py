"""The shared HTML layer: templates, styles, translations and the local landing page."""
from .i18n import (
    COOKIE_NAME,
    DEFAULT_LOCALE,
    SUPPORTED_LOCALES,
    LocaleMiddleware,
    N_,
    current_locale,
    get_translations,
    gettext,
    install_locale,
    negotiate_locale,
    ngettext,
)
from .roles import ROLE_LABELS, role_label
from .templates import (
    ConsoleTemplates,
    install_error_pages,
    make_templates,
    mount_static,
)

__all__ = [
    "COOKIE_NAME",
    "DEFAULT_LOCALE",
    "SUPPORTED_LOCALES",
    "ConsoleTemplates",
    "LocaleMiddleware",
    "N_",
    "ROLE_LABELS",
    "current_locale",
    "get_translations",
    "gettext",
    "install_error_pages",
    "install_locale",
    "make_templates",
    "mount_static",
    "negotiate_locale",
    "ngettext",
    "role_label",
]
