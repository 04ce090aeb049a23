"""Strict JSON parsing of request bodies."""

from __future__ import annotations

import pytest

from foundation import jsonbody


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b'{"a": 1, "a": 2}', "duplicated key 'a'"),
        (b'{"a": NaN}', "NaN is not valid JSON"),
        (b'{"a": Infinity}', "Infinity is not valid JSON"),
        (b'{"a": 1e999999}', "out of range"),
        (b'{"a": ' + b"9" * 5000 + b"}", "invalid JSON"),
        (b"\xff\xfe{}", "not valid UTF-8"),
        ('{"a": "é"}'.encode("utf-16"), "not valid UTF-8"),
        (b"\x00{}", "invalid JSON"),
        (b"[" * 17 + b"]" * 17, "nesting deeper than 16"),
        (b"[" * 100_000 + b"]" * 100_000, "nesting deeper than 16"),
        (b"{" + b",".join(b'"k%d": 1' % i for i in range(65)) + b"}", "65 keys"),
        (b"", "invalid JSON"),
        (b"{bad", "invalid JSON"),
    ],
)
def test_rejected(body: bytes, reason: str) -> None:
    with pytest.raises(jsonbody.MalformedJSON, match=reason.replace("(", r"\(")):
        jsonbody.parse(body)


def test_accepted() -> None:
    assert jsonbody.parse(b'{"a": [1, 2.5, "x", null, true], "b": {"c": {}}}') == {
        "a": [1, 2.5, "x", None, True],
        "b": {"c": {}},
    }
    assert jsonbody.parse(b"[" * 16 + b"]" * 16)
