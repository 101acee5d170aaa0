"""Every string of the services' own templates has a Vietnamese translation.

The msgids are extracted with Babel exactly as ``babel.cfg`` extracts them; each must be
translated in the service's catalogue (services/<name>/locale) or in the common one
(libs/common/locale), which the apps merge at run time.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.pofile import read_po

from libs.common.ui.i18n import LOCALE_DIR, get_translations

from .conftest import REPO_ROOT

SERVICES_DIR = REPO_ROOT / "services"
TEMPLATE_SERVICES = sorted(p.parent.name for p in SERVICES_DIR.glob("*/templates") if p.is_dir())
JINJA_OPTIONS = {"**.html": {"extensions": "jinja2.ext.i18n", "trimmed": "true", "newstyle_gettext": "true"}}
PLACEHOLDER = re.compile(r"%\([a-z_]+\)s")
# Letters that only Vietnamese writes: a translation of a sentence without any of them
# has almost certainly lost its diacritics.
VIETNAMESE_LETTERS = set("ăâđêôơưàảãáạằẳẵắặầẩẫấậèẻẽéẹềểễếệìỉĩíịòỏõóọồổỗốộờởỡớợùủũúụừửữứựỳỷỹýỵ")


def _catalogue(path: Path, lang: str):
    with path.open("rb") as fh:
        return read_po(fh, locale=lang)


def _po(service: str, lang: str) -> Path:
    return SERVICES_DIR / service / "locale" / lang / "LC_MESSAGES" / "messages.po"


def template_msgids(service: str) -> set[str]:
    found = set()
    for _file, _line, message, _comments, _context in extract_from_dir(
            str(SERVICES_DIR / service / "templates"), [("**.html", "jinja2")], JINJA_OPTIONS,
            keywords=DEFAULT_KEYWORDS):
        found.update([message] if isinstance(message, str) else [m for m in message if m])
    return found


def used_msgids(service: str) -> set[str]:
    """What the service translates: its templates (pages and e-mails) and its Python code."""
    found = set()
    options = {**JINJA_OPTIONS, "**/email/*.txt": JINJA_OPTIONS["**.html"]}
    for _file, _line, message, _comments, _context in extract_from_dir(
            str(SERVICES_DIR / service), [("**/tests/**", "ignore"), ("**/templates/**.html", "jinja2"),
                                          ("**/templates/**/email/*.txt", "jinja2"), ("**.py", "python")],
            options, keywords=DEFAULT_KEYWORDS):
        found.update([message] if isinstance(message, str) else [m for m in message if m])
    return found


def test_there_are_service_templates_to_check():
    assert {"intake", "provisioning", "declaration", "notification", "reporting"} <= set(TEMPLATE_SERVICES)
    assert "Change password" in template_msgids("provisioning")


@pytest.mark.parametrize("service", TEMPLATE_SERVICES)
def test_every_template_string_has_a_vietnamese_translation(service):
    common = _catalogue(LOCALE_DIR / "vi" / "LC_MESSAGES" / "messages.po", "vi")
    own = _catalogue(_po(service, "vi"), "vi") if _po(service, "vi").is_file() else None

    def translated(msgid: str) -> str:
        for catalogue in (own, common):
            message = catalogue.get(msgid) if catalogue is not None else None
            if message is not None and message.string and not message.fuzzy:
                return message.string
        return ""

    msgids = template_msgids(service)
    assert msgids
    missing = sorted(m for m in msgids if not translated(m).strip())
    assert missing == [], f"{service}: no Vietnamese translation for {missing}"
    # A sentence translated without a single Vietnamese letter lost its diacritics.
    flat = sorted(m for m in msgids if len(translated(m).split()) > 2
                  and not VIETNAMESE_LETTERS & set(translated(m).lower()))
    assert flat == [], flat


@pytest.mark.parametrize("service", TEMPLATE_SERVICES)
def test_service_catalogues_are_sound(service):
    vi_path, en_path = _po(service, "vi"), _po(service, "en")
    assert vi_path.is_file() and en_path.is_file(), service
    vi, en = _catalogue(vi_path, "vi"), _catalogue(en_path, "en")
    assert vi.plural_forms == "nplurals=1; plural=0;"
    vi_ids = {m.id for m in vi if m.id}
    for message in vi:
        if not message.id:
            continue
        assert not message.fuzzy, message.id
        assert message.string.strip(), message.id
        assert sorted(PLACEHOLDER.findall(message.id)) == sorted(PLACEHOLDER.findall(message.string)), message.id
    # English is the source language: the en catalogue lists the same ids, untranslated.
    assert {m.id for m in en if m.id} == vi_ids
    assert all(not m.string or m.string == m.id for m in en if m.id)
    # Nothing stale: every id of the service catalogue is used by its templates or its code.
    assert vi_ids <= used_msgids(service), sorted(vi_ids - used_msgids(service))


@pytest.mark.parametrize("service", TEMPLATE_SERVICES)
def test_the_merged_translations_are_what_the_pages_get(service):
    locale_dir = SERVICES_DIR / service / "locale"
    vi = get_translations("vi", (locale_dir,))
    en = get_translations("en", (locale_dir,))
    for msgid in template_msgids(service):
        assert vi.gettext(msgid) != msgid, msgid
        assert en.gettext(msgid) == msgid
    assert get_translations("vi", (SERVICES_DIR / "provisioning" / "locale",)).gettext(
        "Change password") == "Đổi mật khẩu"
