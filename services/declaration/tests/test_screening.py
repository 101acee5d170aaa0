"""The screening rule set of DOMAIN.md, as data: what each answer gives, and what is refused."""
import json

import pytest

from services.declaration.screening import DEFAULT_RULES, InvalidRuleSet, RuleBook, answer_codes

BOOK = RuleBook.parse(DEFAULT_RULES.read_text(encoding="utf-8"))


@pytest.mark.parametrize(("symptoms", "exposures", "other", "result", "reasons"), [
    ((), (), None, "green", ()),
    (("fever",), (), None, "yellow", ("symptom",)),
    (("fatigue",), (), None, "yellow", ("symptom",)),
    ((), (), "đau đầu", "yellow", ("symptom",)),
    ((), ("from_abroad",), None, "yellow", ("exposure",)),
    ((), ("household_fever", "outbreak_area"), None, "yellow", ("exposure",)),
    (("fever", "cough"), (), None, "red", ("fever_with_respiratory_sign",)),
    (("fever", "breathless"), (), None, "red", ("fever_with_respiratory_sign",)),
    (("fever", "sore_throat"), (), None, "red", ("fever_with_respiratory_sign",)),
    (("fever", "taste_smell"), (), None, "red", ("fever_with_respiratory_sign",)),
    (("cough", "breathless", "taste_smell"), (), None, "yellow", ("symptom",)),  # no fever: attention
    ((), ("close_contact",), None, "red", ("close_contact",)),
    (("fever", "cough"), ("close_contact",), None, "red", ("fever_with_respiratory_sign", "close_contact")),
])
def test_the_2021_rules(symptoms, exposures, other, result, reasons):
    assert BOOK.screen(answer_codes(symptoms, exposures, other)) == (result, reasons)


def test_labels_and_advice_in_both_languages():
    assert BOOK.version == "2021-06"
    assert BOOK.label("close_contact", "vi").startswith("Tiếp xúc gần")
    assert BOOK.label("close_contact", "en").startswith("Close contact")
    assert "1900 9095" in BOOK.advice("red", "vi") and BOOK.advice("green", "en").startswith("You may enter")


def _doc(**changes):  # noqa: ANN003, ANN202
    doc = json.loads(DEFAULT_RULES.read_text(encoding="utf-8"))
    doc.update(changes)
    return json.dumps(doc)


@pytest.mark.parametrize("text", [
    "not json", "{}", _doc(version="has space"), _doc(rules=[]),
    _doc(rules=[{"id": "x", "result": "red", "any": ["sneezing"], "label": {"vi": "a", "en": "b"}}]),
    _doc(rules=[{"id": "x", "result": "purple", "any": ["fever"], "label": {"vi": "a", "en": "b"}}]),
    _doc(rules=[{"id": "x", "result": "red", "label": {"vi": "a", "en": "b"}}]),
    _doc(rules=[{"id": "x", "result": "red", "any": ["fever"], "label": {"vi": "a", "en": "b"}}] * 2),
    _doc(advice={"green": {"vi": "a", "en": "b"}}),
    _doc(unexpected=True),
])
def test_invalid_rule_sets_are_refused_with_a_reason(text):
    with pytest.raises(InvalidRuleSet) as caught:
        RuleBook.parse(text)
    assert str(caught.value)
