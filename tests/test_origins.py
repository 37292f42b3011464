from __future__ import annotations

import pytest

from webcall_widget import origins


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("https://Shop.Example", "https://shop.example"),
        ("https://shop.example:443", "https://shop.example"),
        ("http://shop.example:80/", "http://shop.example"),
        ("http://localhost:8000", "http://localhost:8000"),
        ("http://[::1]:8000", "http://[::1]:8000"),
    ],
)
def test_origins_are_normalised(raw, expected):
    assert origins.normalise(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "shop.example",
        "ftp://shop.example",
        "https://shop.example/page",
        "https://u@x.example",
        "https://x.example?q",
        "https://x.example:99999",
        "null",
        "",
    ],
)
def test_non_origins_are_none(raw):
    assert origins.normalise(raw) is None


def test_list_accepts_lines_commas_and_spaces_and_drops_duplicates():
    text = "https://a.example\nhttps://b.example, https://A.example  https://*.c.example"
    assert origins.parse_origin_list(text) == [
        "https://a.example",
        "https://b.example",
        "https://*.c.example",
    ]


def test_strict_list_names_the_bad_entry():
    with pytest.raises(ValueError, match="www.example.com/path"):
        origins.parse_origin_list("https://www.example.com/path", strict=True)


def test_same_host_is_always_allowed():
    assert origins.is_allowed("http://testserver", "testserver", [])
    assert origins.is_allowed("https://site.example", "site.example:443", [])


def test_other_host_needs_to_be_listed():
    assert not origins.is_allowed("https://evil.example", "site.example", [])
    assert origins.is_allowed("https://shop.example", "site.example", ["https://shop.example"])


def test_scheme_matters_for_listed_origins():
    assert not origins.is_allowed("http://shop.example", "site.example", ["https://shop.example"])


def test_wildcard_matches_subdomains_but_not_the_bare_domain_or_lookalikes():
    allowed = ["https://*.shop.example"]
    assert origins.matches("https://eu.shop.example", allowed)
    assert origins.matches("https://a.b.shop.example", allowed)
    assert not origins.matches("https://shop.example", allowed)
    assert not origins.matches("https://evilshop.example", allowed)


def test_request_without_origin_is_not_from_a_page_and_is_allowed():
    assert origins.is_allowed(None, "site.example", [])


def test_garbage_origin_is_refused():
    assert not origins.is_allowed("javascript:alert(1)", "site.example", ["https://a.example"])
