"""Content limits: oversized text is cut (and marked), unencodable text is repaired."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kubevents.records import OutputRecord
from kubevents.sinks.limits import clean_text, limit_record


def record(body: str = "msg", **attributes: object) -> OutputRecord:
    return OutputRecord(
        timestamp_ns=1,
        observed_ns=2,
        severity_number=9,
        severity_text="Normal",
        event_name="k8s.event",
        body=body,
        namespace="shop",
        attributes={"k8s.event.reason": "Started", **attributes},  # type: ignore[dict-item]
    )


@pytest.mark.parametrize(
    ("text", "limit", "expected", "cut"),
    [
        ("short", 10, "short", False),
        ("exactly10!", 10, "exactly10!", False),
        ("elevenchars", 10, "elevenchar", True),
        ("ééééé", 10, "ééééé", False),  # 10 bytes
        ("éééééé", 10, "ééééé", True),  # 12 bytes: cut on a character boundary
        ("a€€€", 5, "a€", True),  # never half a character
        ("lone \ud800 surrogate", 100, "lone \ufffd surrogate", False),
        ("", 10, "", False),
    ],
)
def test_clean_text(text: str, limit: int, expected: str, cut: bool) -> None:
    assert clean_text(text, limit) == (expected, cut)


@given(st.text(), st.integers(min_value=4, max_value=64))
def test_clean_text_is_always_encodable_and_within_the_limit(text: str, limit: int) -> None:
    cleaned, cut = clean_text(text, limit)
    data = cleaned.encode("utf-8")  # never raises
    assert len(data) <= limit
    assert cut == (len(text.encode("utf-8", "surrogatepass")) > limit)


def test_a_record_within_the_limits_is_returned_as_is() -> None:
    original = record(**{"kubevents.occurrences": 3, "kubevents.pattern.rate_per_minute": 2.5})
    assert limit_record(original, max_body_bytes=100, max_attribute_bytes=100) is original


def test_an_oversized_body_is_cut_and_marked() -> None:
    cleaned = limit_record(record("x" * 500), max_body_bytes=100, max_attribute_bytes=100)
    assert cleaned.body == "x" * 100
    assert cleaned.attributes["kubevents.truncated"] is True
    assert cleaned.attributes["k8s.event.reason"] == "Started"


def test_an_oversized_attribute_is_cut_and_marked() -> None:
    cleaned = limit_record(
        record(**{"kubevents.pattern.samples": "u" * 300}),
        max_body_bytes=100,
        max_attribute_bytes=64,
    )
    assert cleaned.attributes["kubevents.pattern.samples"] == "u" * 64
    assert cleaned.attributes["kubevents.truncated"] is True
    assert cleaned.body == "msg"


def test_unencodable_text_is_repaired_without_the_truncation_mark() -> None:
    cleaned = limit_record(
        record("bad \udc80 byte", **{"k8s.object.name": "web-\ud83d"}),
        max_body_bytes=100,
        max_attribute_bytes=100,
    )
    assert cleaned.body == "bad \ufffd byte"
    assert cleaned.attributes["k8s.object.name"] == "web-\ufffd"
    assert "kubevents.truncated" not in cleaned.attributes


def test_lists_of_strings_are_cleaned_item_by_item() -> None:
    cleaned = limit_record(
        record(**{"tags": ["ok", "y" * 80]}), max_body_bytes=100, max_attribute_bytes=64
    )
    assert cleaned.attributes["tags"] == ["ok", "y" * 64]
    assert cleaned.attributes["kubevents.truncated"] is True
