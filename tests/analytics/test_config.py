"""The typed ANALYTICS settings: defaults, coercion and test overrides."""

from __future__ import annotations

from django.test import override_settings

from analytics.config import AnalyticsSettings, analytics_settings


def test_unset_keys_take_their_documented_defaults() -> None:
    with override_settings(ANALYTICS={}):
        assert analytics_settings() == AnalyticsSettings()


def test_overriding_the_setting_is_seen_by_the_next_read() -> None:
    before = analytics_settings()
    with override_settings(ANALYTICS={"DEFAULT_DAYS": "7", "CORRECTION": "fdr_bh"}):
        assert analytics_settings().default_days == 7
        assert analytics_settings().correction == "fdr_bh"
    assert analytics_settings() == before


def test_an_unknown_correction_falls_back_to_holm() -> None:
    with override_settings(ANALYTICS={"CORRECTION": "bonferroni"}):
        assert analytics_settings().correction == "holm"
