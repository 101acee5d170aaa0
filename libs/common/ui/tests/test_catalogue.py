"""The catalogues cover every string of the common UI."""
from __future__ import annotations

import re
from pathlib import Path

from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.pofile import read_po

from libs.common.ui.i18n import LOCALE_DIR
from libs.common.ui.templates import COMMON_TEMPLATES_DIR, UI_DIR

REPO_ROOT = UI_DIR.parents[2]
PLACEHOLDER = re.compile(r"%\([a-z_]+\)s")


def _catalogue(lang: str):
    with (LOCALE_DIR / lang / "LC_MESSAGES" / "messages.po").open("rb") as fh:
        return read_po(fh, locale=lang)


def _msgids(directory: Path, method_map, options_map=None) -> set[str]:
    found = set()
    for _filename, _lineno, message, _comments, _context in extract_from_dir(
        str(directory), method_map, options_map or {}, keywords=DEFAULT_KEYWORDS
    ):
        found.update([message] if isinstance(message, str) else [m for m in message if m])
    return found


def template_msgids() -> set[str]:
    return _msgids(
        COMMON_TEMPLATES_DIR,
        [("**.html", "jinja2")],
        {"**.html": {"extensions": "jinja2.ext.i18n", "trimmed": "true", "newstyle_gettext": "true"}},
    )


def python_msgids() -> set[str]:
    # libs/common/ui only (not its tests): role labels and error texts.
    return _msgids(UI_DIR, [("tests/**", "ignore"), ("*.py", "python")])


def test_every_template_string_has_a_vietnamese_translation():
    vi = _catalogue("vi")
    msgids = template_msgids()
    assert "Electronic health declaration system" in msgids and "Sign out" in msgids
    missing = sorted(m for m in msgids if not (vi.get(m) and vi.get(m).string))
    assert missing == []


def test_every_python_string_has_a_vietnamese_translation():
    vi = _catalogue("vi")
    msgids = python_msgids()
    assert "City DIC officer" in msgids and "Page not found" in msgids
    missing = sorted(m for m in msgids if not (vi.get(m) and vi.get(m).string))
    assert missing == []


def test_vietnamese_catalogue_is_sound():
    vi = _catalogue("vi")
    assert vi.plural_forms == "nplurals=1; plural=0;"
    for message in vi:
        if not message.id:
            continue
        assert not message.fuzzy, message.id
        assert sorted(PLACEHOLDER.findall(message.id)) == sorted(PLACEHOLDER.findall(message.string)), message.id
    # diacritics survived the round trip
    assert vi.get("Help").string == "Trợ giúp"


def test_english_catalogue_parses_and_is_identity():
    en = _catalogue("en")
    vi_ids = {m.id for m in _catalogue("vi") if m.id}
    assert {m.id for m in en if m.id} == vi_ids
    assert all(not m.string or m.string == m.id for m in en if m.id)


def test_babel_cfg_covers_code_and_templates():
    text = (REPO_ROOT / "babel.cfg").read_text(encoding="utf-8")
    assert "[python: libs/**.py]" in text
    assert "[python: services/**.py]" in text
    assert "[jinja2: **/templates/**.html]" in text
    assert "jinja2.ext.i18n" in text
