"""RFC 8785 canonicalisation: the RFC's own examples, and our fast path held to the reference
implementation on generated JSON."""

from __future__ import annotations

import json
import math

import pytest
from academy.credentials.jcs import (
    CanonicalizationError,
    canonicalize,
    loads,
    reference_canonicalize,
)
from hypothesis import given, settings
from hypothesis import strategies as st


def test_rfc8785_section_3_2_2_example() -> None:
    value = {
        "numbers": [333333333.33333329, 1e30, 4.50, 2e-3, 0.000000000000000000000000001],
        "string": "\u20ac$\u000f\u000aA'\u0042\u0022\u005c\\\"/",
        "literals": [None, True, False],
    }
    expected = (
        '{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],'
        '"string":"€$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}'
    )
    assert canonicalize(value).decode() == expected


def test_rfc8785_sorting_by_utf16_code_units() -> None:
    value = {
        "\u20ac": "Euro Sign",
        "\r": "Carriage Return",
        "\ufb33": "Hebrew Letter Dalet With Dagesh",
        "1": "One",
        "\U0001f600": "Emoji: Grinning Face",
        "\u0080": "Control",
        "\u00f6": "Latin Small Letter O With Diaeresis",
    }
    keys = list(json.loads(canonicalize(value)))
    assert keys == ["\r", "1", "\u0080", "\u00f6", "\u20ac", "\U0001f600", "\ufb33"]


@pytest.mark.parametrize(
    ("number", "text"),
    [(0.0, "0"), (-0.0, "0"), (1.0, "1"), (1e21, "1e+21"), (1e-7, "1e-7"), (123e-20, "1.23e-18")],
)
def test_numbers_follow_ecmascript(number: float, text: str) -> None:
    assert canonicalize(number).decode() == text


@pytest.mark.parametrize("bad", [math.nan, math.inf, 2**53, object()])
def test_values_without_canonical_form_are_refused(bad) -> None:
    with pytest.raises(CanonicalizationError):
        canonicalize({"x": bad})


def test_duplicate_members_are_refused_on_parse() -> None:
    with pytest.raises(CanonicalizationError, match="duplicate"):
        loads('{"a": 1, "a": 2}')


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=6), children, max_size=5)
    ),
    max_leaves=30,
)


@settings(max_examples=150, deadline=None)
@given(json_values)
def test_fast_path_equals_reference(value) -> None:
    try:
        expected = reference_canonicalize(value)
    except Exception:
        with pytest.raises(CanonicalizationError):
            canonicalize(value)
        return
    assert canonicalize(value) == expected
    reparsed = json.loads(expected)  # integral floats come back as ints: same bytes, or refused
    try:
        again = reference_canonicalize(reparsed)
    except Exception:
        return
    assert canonicalize(reparsed) == again == expected
