"""The report kind registry: one entry per kind, looked up by slug."""

from __future__ import annotations

import pytest

from analytics.registry import REPORT_KINDS, report_kind_get, report_kind_titles


def test_every_kind_is_keyed_by_its_own_slug_and_titled() -> None:
    for slug, kind in REPORT_KINDS.items():
        assert kind.slug == slug
        assert kind.title


def test_titles_list_the_kinds_in_page_order() -> None:
    assert [slug for slug, _ in report_kind_titles()] == list(REPORT_KINDS)


def test_an_unknown_kind_is_refused_with_the_known_ones() -> None:
    with pytest.raises(ValueError, match="agreement"):
        report_kind_get(slug="weather")


def test_kinds_without_options_parse_to_none() -> None:
    assert REPORT_KINDS["drift"].options_parse({"rule": "consensus"}) == {}
