"""One policy for every field people type: names, short texts, messages, e-mails, phones,
nationalities. Every service's forms, JSON APIs, imports and consoles check typed text here.

For every kind of field:

- the text is normalised to NFC (Vietnamese letters precomposed, as the fonts expect);
- control characters are refused: C0 (NUL included), DEL and C1 (U+0080-U+009F). Only a
  free text (a message, a note) keeps line breaks and tabs; a short text (a unit name, a
  street, a position) takes them as plain spaces; a name takes none;
- bidirectional controls are refused (U+061C, U+200E/U+200F marks, U+202A-U+202E
  embeddings and overrides, U+2066-U+2069 isolates): they make a text read otherwise
  than it is stored; so are the invisible format characters (U+200B, U+2060-U+2064,
  U+FEFF, U+00AD, the tag characters) and the line and paragraph separators;
- surrogates, private-use code points, noncharacters and code points unassigned in this
  Python's Unicode database are refused (PostgreSQL cannot store a NUL or a lone
  surrogate: none reaches a writer).

A **name** is letters of any script (combining marks included), spaces and ``' ’ - .``;
compatibility letters (mathematical alphanumerics such as "𝕳𝖊𝖑𝖑𝖔", fullwidth, circled,
superscript letters: NFKC(name) != NFC(name)) are refused. A **nationality** is one of
the ISO 3166-1 countries of ``countries.json`` (alpha-2 code, Vietnamese or English name,
with or without diacritics, or a usual alias such as "Mỹ"), stored as its Vietnamese name.

Each refusal names its field, in Vietnamese (first) and English: :class:`TextRefused`.
The checks are on the declaration's hot path: ``str.isprintable`` (in C) clears nearly
every text at once; only a text with a non-printable character is searched with the
precompiled classes (spaces other than U+0020 and joiners are allowed); a name is one more
``fullmatch``; a per-character loop runs only for a name with combining marks left after
NFC (rare: Vietnamese is precomposed).
"""
from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from libs.common.ui import N_

COUNTRIES_FILE = Path(__file__).with_name("countries.json")

# Messages (English msgids, translated by the common catalogue libs/common/locale).
CONTROL = N_("%(field)s contains a control character: delete it and type the text again.")
BIDI = N_("%(field)s contains an invisible character that changes the direction or look of the text: "
          "type the text again.")
UNASSIGNED = N_("%(field)s contains a character that is not a letter or sign of any alphabet: "
                "type the text again.")
STYLED = N_("%(field)s is written in decorative letters: type it with ordinary letters.")
NAME_CHARS = N_("%(field)s has letters, spaces and the signs ' - . only, no digits or symbols.")
NO_LETTER = N_("%(field)s must contain letters.")
COUNTRY = N_("%(field)s is not a country of the list: choose it, or write its name, such as Việt Nam.")
EMAIL = N_("%(field)s is not a valid e-mail address, such as ten@example.vn.")

# Field labels used by several services.
FULL_NAME = N_("Full name")
NATIONALITY = N_("Nationality")
STREET = N_("House number, street")
OTHER_SYMPTOM = N_("Other symptom")
CONTACT_NAME = N_("Contact person")
MESSAGE = N_("Message")

MESSAGES = {"text_control": CONTROL, "text_bidi": BIDI, "text_unassigned": UNASSIGNED, "name_styled": STYLED,
            "name_chars": NAME_CHARS, "name_letters": NO_LETTER, "nationality": COUNTRY, "email": EMAIL}


def _ranges(points: list[int]) -> str:
    """A regular-expression class body for these code points (sorted), as ranges."""
    parts, start, prev = [], None, None
    for cp in points:
        if start is None:
            start = prev = cp
        elif cp == prev + 1:
            prev = cp
        else:
            parts.append((start, prev))
            start = prev = cp
    if start is not None:
        parts.append((start, prev))
    return "".join(re.escape(chr(a)) if a == b else f"{re.escape(chr(a))}-{re.escape(chr(b))}" for a, b in parts)


def _build() -> tuple[re.Pattern, re.Pattern, re.Pattern]:
    """The forbidden characters, by reason: controls, direction and invisible formats,
    and the code points that are no character (surrogates, private use, unassigned)."""
    category = unicodedata.category
    unassigned = [cp for cp in range(0x30000) if category(chr(cp)) in ("Cn", "Co", "Cs")]
    # Planes 3 to 13 are unassigned but for a few CJK blocks (checked above up to 0x2FFFF,
    # below for plane 3); planes 15 and 16 are private use. A class of ranges stays small.
    unassigned += [cp for cp in range(0x30000, 0x40000) if category(chr(cp)) in ("Cn", "Co")]
    tail = [cp for cp in range(0xE0000, 0xE1000) if category(chr(cp)) == "Cn"]
    unassigned_class = _ranges(unassigned) + "\U00040000-\U000DFFFF" + _ranges(tail) + "\U000F0000-\U0010FFFF"
    control = "\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f"
    bidi = ("\u00ad\u061c\u180e\u200b\u200e\u200f\u2028\u2029\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff"
            "\U000e0000-\U000e007f")
    return (re.compile(f"[{control}]"), re.compile(f"[{bidi}]"), re.compile(f"[{unassigned_class}]"))


_CONTROL, _BIDI, _UNASSIGNED = _build()
_LINE_BREAKS = re.compile(r"[\t\n\r]")
_SPACES = re.compile(r"[ \t\n\r]+")
_FREE_EOL = re.compile(r"\r\n?")
# Letters of any script (\w without digits and "_"), spaces, and the signs names use.
_NAME = re.compile(r"(?:[^\W\d_]|[ '’\-.])+")
_HAS_LETTER = re.compile(r"[^\W\d_]")
_EMAIL = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+")


class TextRefused(ValueError):
    """A typed text this policy refuses: ``code``, the message and the field's label."""

    def __init__(self, code: str, label: str | tuple[str, str]) -> None:
        super().__init__(code)
        self.code = code
        self.label = label
        self.msgid = MESSAGES[code]

    def text(self, lang: str) -> str:
        from libs.common.ui import gettext

        label = (self.label[0] if lang != "en" else self.label[1]) if isinstance(self.label, tuple) \
            else gettext(self.label, lang)
        return gettext(self.msgid, lang) % {"field": label}

    @property
    def vi(self) -> str:
        return self.text("vi")

    @property
    def en(self) -> str:
        return self.text("en")

    def both(self) -> str:
        return f"{self.vi} / {self.en}"

    def __str__(self) -> str:
        return self.both()


def refusal(value: str, multiline: bool = False) -> str | None:
    """Why ``value`` cannot be stored as typed text (a code of MESSAGES), or None."""
    if value.isprintable():  # in C: no Cc, Cf, Cs, Co, Cn, Zl, Zp code point (the usual case)
        return None
    if _CONTROL.search(value) is not None:
        return "text_control"
    if not multiline and _LINE_BREAKS.search(value) is not None:
        return "text_control"
    if value.isascii():
        return None
    if _BIDI.search(value) is not None:
        return "text_bidi"
    if _UNASSIGNED.search(value) is not None:
        return "text_unassigned"
    return None


def _nfc(value: str) -> str:
    return value if value.isascii() or unicodedata.is_normalized("NFC", value) else unicodedata.normalize("NFC", value)


def _checked(value: str, label: str | tuple[str, str], multiline: bool) -> str:
    reason = refusal(value, multiline)
    if reason is not None:
        raise TextRefused(reason, label)
    return _nfc(value)


def short_text(value: str, label: str | tuple[str, str]) -> str:
    """One line (a unit or venue name, a street, a position): tabs and line breaks become
    single spaces; ends stripped."""
    if _LINE_BREAKS.search(value) is not None:
        value = _SPACES.sub(" ", value)
    return _checked(value, label, multiline=False).strip()


def free_text(value: str, label: str | tuple[str, str]) -> str:
    """Several lines (a message, a note): line breaks (``\\n``) and tabs are kept."""
    if "\r" in value:
        value = _FREE_EOL.sub("\n", value)
    return _checked(value, label, multiline=True).strip()


def _name_chars_ok(value: str) -> bool:
    if _NAME.fullmatch(value) is not None:
        return True
    # Combining marks left after NFC (scripts without precomposed letters): per character.
    category = unicodedata.category
    return all(c in " '’-." or category(c)[0] in "LM" for c in value) and category(value[0])[0] != "M"


def name(value: str, label: str | tuple[str, str] = FULL_NAME) -> str:
    """A person's name: letters of any script, spaces and ``' ’ - .``; single spaces."""
    value = " ".join(_checked(value, label, multiline=False).split())
    if not value:
        return value  # "required" is the field's own check
    if not value.isascii() and unicodedata.normalize("NFKC", value) != value:
        raise TextRefused("name_styled", label)
    if not _name_chars_ok(value):
        raise TextRefused("name_chars", label)
    if _HAS_LETTER.search(value) is None:
        raise TextRefused("name_letters", label)
    return value


def email(value: str, label: str | tuple[str, str] = N_("E-mail")) -> str:
    value = _checked(value, label, multiline=False).strip()
    if not _EMAIL.fullmatch(value):
        raise TextRefused("email", label)
    return value


def fold(value: str) -> str:
    """Lower case, no diacritics (đ -> d), letters and digits with single spaces: a key to
    match what people type against a list."""
    text = unicodedata.normalize("NFD", value.replace("đ", "d").replace("Đ", "D").casefold())
    text = "".join(c for c in text if not unicodedata.combining(c))
    return " ".join(re.sub(r"[^\w]+", " ", text).split())


@dataclass(frozen=True)
class Country:
    code: str
    vi: str
    en: str


@lru_cache(maxsize=1)
def countries() -> tuple[dict[str, Country], dict[str, Country]]:
    """(alpha-2 code -> country, folded name or alias -> country)."""
    data = json.loads(COUNTRIES_FILE.read_text(encoding="utf-8"))
    by_code = {code: Country(code, names["vi"], names["en"]) for code, names in data["countries"].items()}
    by_name: dict[str, Country] = {}
    for country in by_code.values():
        for written in (country.en, country.en.replace("&", "and"), country.vi):
            by_name.setdefault(fold(written), country)
    for code, aliases in data["aliases"].items():
        for alias in aliases:
            by_name.setdefault(fold(alias), by_code[code])
    return by_code, by_name


def country_of(value: str) -> Country | None:
    by_code, by_name = countries()
    text = value.strip()
    if len(text) == 2 and text.isascii():
        return by_code.get(text.upper())
    return by_name.get(fold(text))


def nationality(value: str, label: str | tuple[str, str] = NATIONALITY) -> str:
    """A nationality as the form stores it: the country's Vietnamese name ("Việt Nam")."""
    value = _checked(value, label, multiline=False).strip()
    if value == "Việt Nam":  # nearly every declaration: no lookup
        return value
    found = country_of(value)
    if found is None:
        raise TextRefused("nationality", label)
    return found.vi


def json_errors_by_field(model, body: bytes, exc):  # noqa: ANN001, ANN201
    """The errors of ``body`` against ``model``, by field, when the JSON parser refused it whole.

    pydantic's parser refuses a lone surrogate escape (``"\\ud800"``) as invalid JSON,
    without saying where; Python's parser reads it, and the model's checks (this policy)
    then name the field. Only on that error path; anything else keeps ``exc``."""
    import json

    from pydantic import ValidationError

    if not any(e.get("type") == "json_invalid" for e in exc.errors(include_url=False)):
        return exc
    try:
        data = json.loads(body)
    except Exception:  # noqa: BLE001 - truly invalid JSON (or nested too deep): the first answer stands
        return exc
    try:
        model.model_validate(data)
    except ValidationError as found:
        return found
    return exc


def pydantic_error(exc: TextRefused):  # noqa: ANN201
    """A refusal as a pydantic error: the message in Vietnamese / English, each alone in ``ctx``."""
    from pydantic_core import PydanticCustomError

    both = exc.both().replace("{", "(").replace("}", ")")
    return PydanticCustomError(exc.code, both, {"msg_vi": exc.vi, "msg_en": exc.en})


def for_model(check, value: object, label: str | tuple[str, str]) -> object:  # noqa: ANN001
    """``check`` (a kind of this policy) in a pydantic "before" validator: a typed string is
    checked as it came (before any stripping); anything else is left to the field's type."""
    if not isinstance(value, str):
        return value
    try:
        return check(value, label)
    except TextRefused as exc:
        raise pydantic_error(exc) from None


def scrub(value: str, limit: int | None = None) -> str:
    """Text that came with a machine's message rather than typed in a form (an e-mail's
    header, an attachment's file name): what this policy refuses is removed rather than
    refused (line breaks and tabs become spaces), NFC, ends stripped, cut at ``limit``."""
    if not value.isprintable():
        value = _SPACES.sub(" ", value)
        for pattern in (_CONTROL, _BIDI, _UNASSIGNED):
            value = pattern.sub("", value)
    value = _nfc(value).strip()
    return value[:limit] if limit is not None else value


SPREADSHEET_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_cell(value: object) -> object:
    """A value for a spreadsheet cell: text a spreadsheet would read as a formula (``= + - @``,
    a tab or a carriage return first) gets an apostrophe in front and stays plain text."""
    if isinstance(value, str) and value.startswith(SPREADSHEET_FORMULA_PREFIXES):
        return "'" + value
    return value
