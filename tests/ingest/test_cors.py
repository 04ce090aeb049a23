"""CORS headers of the ingest routes (ingest/cors.py); the preflight and refusals are
exercised through the app in tests/ingest/test_routes.py and tests/sites/."""

from __future__ import annotations

from ingest.cors import cors_headers


def test_no_origin_gets_no_headers() -> None:
    assert cors_headers(None) == {}


def test_any_origin_varies_on_nothing() -> None:
    assert cors_headers("*") == {"Access-Control-Allow-Origin": "*"}


def test_one_origin_is_named_and_caches_vary_on_it() -> None:
    assert cors_headers("https://shop.example") == {
        "Access-Control-Allow-Origin": "https://shop.example",
        "Vary": "Origin",
    }
