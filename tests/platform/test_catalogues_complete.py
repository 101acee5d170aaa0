"""Every user-facing string is in both catalogues (issue 18, item 2).

For the common UI (libs/common) and each service: every msgid its Python code marks
(``_``, ``N_``, ``gettext``, ``ngettext``) and every string its templates translate must
have a Vietnamese translation (its own catalogue, the common one, or the Python texts
table of the declaration service) and an entry in the English catalogue (English is the
source language: an empty ``msgstr`` is the msgid itself). A template may not carry
literal text with letters outside a translation call (a short allowlist below). Both
catalogues of every area compile with ``msgfmt --check``.
"""
from __future__ import annotations

import re
import shutil
import subprocess
from functools import cache
from pathlib import Path

import pytest
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parents[2]
COMMON = ROOT / "libs" / "common"
AREAS = {"common": COMMON, **{p.name: p for p in sorted((ROOT / "services").iterdir()) if (p / "locale").is_dir()}}
TEMPLATE_OPTIONS = {"extensions": "jinja2.ext.i18n", "trimmed": "true", "newstyle_gettext": "true"}

# Literal template text that is no sentence to translate: the product's name, marks and
# abbreviations read the same in both languages, numbers and punctuation.
ALLOWED_LITERALS = {"khaibao", "QR", "CCCD", "CMND", "ID", "PDF", "CSV", "XLSX", "FHIR", "NCOVI", "API",
                    "OpenAPI", "vi", "en", "VI", "EN", "H3", "UTC", "ICT", "JSON", "KB", "xlsx", "csv",
                    "signin"}  # the path of the sign-in page after a base URL
CSS_CLASS = re.compile(r"\b[a-z]+(?:-[a-z]+)+\b")  # {% block body_class %}layout-landing{% endblock %}
LETTERS = re.compile(r"[^\W\d_]{2,}")


@cache
def catalogue(area: Path, lang: str):  # noqa: ANN201
    with (area / "locale" / lang / "LC_MESSAGES" / "messages.po").open("rb") as fh:
        return read_po(fh, locale=lang)


def texts_table(area: Path) -> dict[str, str]:
    """The Vietnamese of messages a service keeps in Python (services/declaration/texts.py)."""
    if (area / "texts.py").is_file():
        from importlib import import_module

        return getattr(import_module(f"services.{area.name}.texts"), "VI", {})
    return {}


def msgids(area: Path) -> dict[str, str]:
    """msgid -> where it was found (file:line)."""
    found: dict[str, str] = {}
    method_map = [("**/tests/**", "ignore"), ("**/locale/**", "ignore"), ("**.py", "python"),
                  ("**/templates/**.html", "jinja2"), ("**/templates/**/email/*.txt", "jinja2")]
    options = {"**/templates/**.html": TEMPLATE_OPTIONS, "**/templates/**/email/*.txt": TEMPLATE_OPTIONS}
    for filename, lineno, message, _comments, _context in extract_from_dir(
            str(area), method_map, options, keywords=DEFAULT_KEYWORDS):
        if area == COMMON and filename.startswith("locale"):
            continue
        for text in [message] if isinstance(message, str) else [m for m in message if m]:
            if text:
                found.setdefault(text, f"{area.relative_to(ROOT)}/{filename}:{lineno}")
    return found


def translated(message: str, area: Path, lang: str) -> bool:
    for where in dict.fromkeys((area, COMMON)):
        entry = catalogue(where, lang).get(message)
        if entry is not None and (lang == "en" or entry.string):
            return True
    # A texts table holds the Vietnamese of Python's messages; their English is the msgid.
    return message in texts_table(area)


@pytest.mark.parametrize("name", sorted(AREAS))
def test_every_string_has_a_vietnamese_translation(name):
    area = AREAS[name]
    missing = [f"{where}: {text!r}" for text, where in sorted(msgids(area).items())
               if not translated(text, area, "vi")]
    assert missing == [], "\n".join(missing)


@pytest.mark.parametrize("name", sorted(AREAS))
def test_every_string_is_in_the_english_catalogue(name):
    area = AREAS[name]
    missing = [f"{where}: {text!r}" for text, where in sorted(msgids(area).items())
               if not translated(text, area, "en")]
    assert missing == [], "\n".join(missing)


def literal_texts(source: str) -> list[tuple[int, str]]:
    """(line, text) of literal template text with letters: outside ``{% trans %}`` blocks,
    Jinja expressions, statements and comments, <script> and <style>, and tags (but for
    the attributes people read: title, alt, placeholder, aria-label)."""
    def blank(match: re.Match) -> str:  # keeps the line numbers
        return re.sub(r"[^\n]", " ", match.group(0))

    text = re.sub(r"{%-?\s*trans\b.*?{%-?\s*endtrans\s*-?%}", blank, source, flags=re.S)
    text = re.sub(r"{#.*?#}|{{.*?}}|{%.*?%}", blank, text, flags=re.S)
    text = re.sub(r"<(script|style)\b.*?</\1>", blank, text, flags=re.S | re.I)
    found = []
    for tag in re.finditer(r"<[^>]*>", text):
        for value in re.findall(r'\b(?:title|alt|placeholder|aria-label)="([^"]*)"', tag.group(0)):
            if [w for w in LETTERS.findall(value) if w not in ALLOWED_LITERALS]:
                found.append((text.count("\n", 0, tag.start()) + 1, value.strip()[:80]))
    text = re.sub(r"<[^>]*>", blank, text)
    text = re.sub(r"&[a-zA-Z]+;|&#\d+;", blank, text)
    for number, line in enumerate(text.split("\n"), 1):
        line = CSS_CLASS.sub(" ", line)
        if [w for w in LETTERS.findall(line) if w not in ALLOWED_LITERALS]:
            found.append((number, " ".join(line.split())[:80]))
    return sorted(found)


def templates() -> list[Path]:
    return sorted(p for area in AREAS.values() for p in area.rglob("templates/**/*.html")
                  if "tests" not in p.relative_to(ROOT).parts)


def test_templates_have_no_literal_text():
    # Open a tag that may hold text to translate (a page's own sentence), or the allowlist above.
    # E-mail bodies and help pages per language (help/<lang>/, email/) are written in their language.
    problems = []
    for path in templates():
        relative = path.relative_to(ROOT).as_posix()
        if "/help/" in relative:
            continue
        for lineno, text in literal_texts(path.read_text(encoding="utf-8")):
            problems.append(f"{relative}:{lineno}: {text}")
    assert problems == [], "\n".join(problems)


@pytest.mark.skipif(shutil.which("msgfmt") is None, reason="gettext's msgfmt is not installed")
@pytest.mark.parametrize("name", sorted(AREAS))
def test_catalogues_compile_with_msgfmt_check(name):
    for lang in ("vi", "en"):
        po = AREAS[name] / "locale" / lang / "LC_MESSAGES" / "messages.po"
        done = subprocess.run(["msgfmt", "--check", "-o", "/dev/null", str(po)], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
