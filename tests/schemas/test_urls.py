"""Page URLs and referrers: what is kept (path, host, UTM tags) and what never is."""

from __future__ import annotations

import pytest

from schemas.urls import normalize_referrer, parse_page


def test_a_page_url_gives_path_host_and_utm_tags_only() -> None:
    page = parse_page(
        "https://user:secret@WWW.Shop.example:8443/Pricing/?utm_source=News%20letter"
        "&UTM_MEDIUM=email&utm_campaign=&email=me%40x.org&utm_source=second#plans"
    )
    assert page is not None
    assert page.path == "/Pricing/" and page.hostname == "www.shop.example"
    assert page.utm == {"utm_source": "News letter", "utm_medium": "email"}
    assert "secret" not in repr(page) and "me@x.org" not in repr(page)


def test_utm_values_are_cleaned_and_bounded() -> None:
    page = parse_page("http://a.example/?utm_term=%00%E2%80%AEx" + "y" * 400)
    assert page is not None
    assert page.utm["utm_term"] == "x" + "y" * 255


@pytest.mark.parametrize(
    "raw",
    ["", "/just/a/path", "ftp://files.example/x", "javascript:alert(1)", "https://", "http://[::1"],
)
def test_what_is_not_an_http_url_is_no_page(raw: str) -> None:
    assert parse_page(raw) is None


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        # As Plausible stores referrers: no leading www., no trailing slash.
        ("https://www.google.com/search?q=my+name", "google.com/search"),
        ("https://www.www.example.org/a/b/", "example.org/a/b"),
        ("https://blog.example/docs//", "blog.example/docs"),
        ("https://News.ycombinator.com/", "news.ycombinator.com"),
        ("http://u:p@blog.example:8080/post/1#c", "blog.example/post/1"),
        ("android-app://com.google.android.gm/", ""),
        ("not a url", ""),
        ("", ""),
        ("https://%zz", ""),
    ],
)
def test_referrers_keep_host_and_path_as_plausible_does(raw: str, expected: str) -> None:
    assert normalize_referrer(raw) == expected


@pytest.mark.parametrize(
    ("url", "param"),
    [
        ("https://example.com/?gclid=abc", "gclid"),
        ("https://example.com/?MSCLKID=abc&x=1", "msclkid"),
        ("https://example.com/?msclkid=b&gclid=a", "gclid"),  # gclid first
        ("https://example.com/?gclid=", ""),  # no value, no click
        ("https://example.com/?fbclid=abc", ""),  # not a rule's parameter
    ],
)
def test_the_ad_click_parameter_is_named_not_kept(url: str, param: str) -> None:
    page = parse_page(url)
    assert page is not None and page.click_id_param == param
