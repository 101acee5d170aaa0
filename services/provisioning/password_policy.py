"""What a chosen password must not be (NIST SP 800-63B 5.1.1.2, OWASP ASVS V2.1).

Only people choose passwords here (the console's /password): initial and reset passwords
are random (passwords.py). A chosen password is refused when it is

- shorter than ``MIN_LENGTH`` characters;
- one of the most common passwords: zxcvbn's list of the 30,000 most frequent passwords
  of public leaks (``zxcvbn.frequency_lists``, MIT licence; a maintained PyPI package
  that ships the list as data, no network at run time), compared without case, and
  also with its separators removed ("Password-123" is "password123");
- containing the username, or a part of it of 4 letters or more ("cangio" of
  "ttyt.cangio"), or the name of the account or of its unit (the whole name without
  spaces, or two of its words in a row: "canthanh" of "Chợ Cần Thạnh"), all compared on
  letters and digits only, without case or diacritics;
- a single repeated or sequential run: one character, or a pattern of up to 3 characters,
  repeated ("aaaaaaaaaa", "abcabcabcabc"), or consecutive letters or digits up or down
  ("abcdefghij", "1234567890", "9876543210"; 0 follows 9).

``refusal`` answers a reason code (None: acceptable); ``MESSAGES`` says each in
Vietnamese then English. Nothing here logs or keeps the password.
"""
from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache

from libs.common.text import fold

MIN_LENGTH = 10
MIN_PART = 4

MESSAGES = {
    "too_short": "Mật khẩu mới phải có ít nhất 10 ký tự / The new password needs at least 10 characters",
    "common": "Mật khẩu này nằm trong danh sách các mật khẩu phổ biến nhất, rất dễ bị đoán; hãy chọn mật khẩu "
              "khác / This password is among the most common passwords and easily guessed; choose another one",
    "username": "Mật khẩu không được chứa tên đăng nhập / The password must not contain the username",
    "unit_name": "Mật khẩu không được chứa tên đơn vị hay tên tài khoản / The password must not contain the "
                 "unit's or the account's name",
    "run": "Mật khẩu không được là một dãy ký tự lặp lại hoặc liên tiếp (như aaaa…, 1234…) / The password must "
           "not be a single repeated or sequential run of characters (such as aaaa…, 1234…)",
}


@lru_cache(maxsize=1)
def common_passwords() -> frozenset[str]:
    from zxcvbn.frequency_lists import FREQUENCY_LISTS

    # Shorter ones are refused by the length already.
    return frozenset(p for p in FREQUENCY_LISTS["passwords"] if len(p) >= MIN_LENGTH - 2)


def _letters(value: str) -> str:
    """Letters and digits only, lower case, no diacritics (đ -> d)."""
    return re.sub(r"[\W_]+", "", fold(value))


def is_run(password: str) -> bool:
    """One character or a short pattern repeated, or consecutive letters or digits (up or down)."""
    text = password.casefold()
    for size in (1, 2, 3):
        if len(text) >= 2 * size and text == (text[:size] * (len(text) // size + 1))[:len(text)]:
            return True
    if not (text.isascii() and text.isalnum()):
        return False
    digits = "0123456789" * 3
    letters = "abcdefghijklmnopqrstuvwxyz"
    for sequence in (digits, digits[::-1], letters, letters[::-1]):
        if text in sequence:
            return True
    return False


def _name_parts(name: str) -> set[str]:
    words = [w for w in re.split(r"[\W_]+", fold(name)) if w]
    parts = {"".join(words)} if len("".join(words)) >= MIN_PART else set()
    parts |= {a + b for a, b in zip(words, words[1:]) if len(a + b) >= MIN_PART + 2}
    return parts


def refusal(password: str, *, username: str = "", names: Iterable[str] = ()) -> str | None:
    """Why ``password`` may not be chosen (a code of ``MESSAGES``), or None."""
    if len(password) < MIN_LENGTH:
        return "too_short"
    if is_run(password):
        return "run"
    lowered = password.casefold()
    common = common_passwords()
    if lowered in common or re.sub(r"[\W_]+", "", lowered) in common:
        return "common"
    letters = _letters(password)
    user = _letters(username)
    user_parts = {user} | {p for p in re.split(r"[\W_]+", fold(username)) if len(p) >= MIN_PART}
    if any(part and part in letters for part in user_parts):
        return "username"
    if any(part in letters for name in names if name for part in _name_parts(name)):
        return "unit_name"
    return None


def message(code: str) -> str:
    return MESSAGES[code]
