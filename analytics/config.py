"""The ANALYTICS setting as one typed, frozen value, read once per process."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Literal

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver


@dataclass(frozen=True)
class AnalyticsSettings:
    """Every ANALYTICS knob, with the default used when a key is unset."""

    # Drift: PSI at or above these is "moderate" / "major" (Siddiqi 2006); KS flags a feature
    # when its adjusted p-value is below ks_alpha and its statistic at least ks_min_statistic.
    psi_moderate: float = 0.1
    psi_major: float = 0.25
    ks_alpha: float = 0.05
    ks_min_statistic: float = 0.05
    correction: Literal["holm", "fdr_bh"] = "holm"
    default_days: int = 30
    rollup_lookback_days: int = 3
    rollup_backfill_days: int = 90
    top_drifted_features: int = 5
    disagreements_page_size: int = 50


def _settings_from(raw: dict[str, Any]) -> AnalyticsSettings:
    """Return typed settings from the ANALYTICS dict, defaults filling what is missing."""
    defaults = AnalyticsSettings()
    # Environment and test overrides may hand over strings: float(str(...)) accepts both.
    return AnalyticsSettings(
        psi_moderate=float(str(raw.get("PSI_MODERATE", defaults.psi_moderate))),
        psi_major=float(str(raw.get("PSI_MAJOR", defaults.psi_major))),
        ks_alpha=float(str(raw.get("KS_ALPHA", defaults.ks_alpha))),
        ks_min_statistic=float(str(raw.get("KS_MIN_STATISTIC", defaults.ks_min_statistic))),
        correction="fdr_bh" if raw.get("CORRECTION") == "fdr_bh" else "holm",
        default_days=int(str(raw.get("DEFAULT_DAYS", defaults.default_days))),
        rollup_lookback_days=int(
            str(raw.get("ROLLUP_LOOKBACK_DAYS", defaults.rollup_lookback_days))
        ),
        rollup_backfill_days=int(
            str(raw.get("ROLLUP_BACKFILL_DAYS", defaults.rollup_backfill_days))
        ),
        top_drifted_features=int(
            str(raw.get("TOP_DRIFTED_FEATURES", defaults.top_drifted_features))
        ),
        disagreements_page_size=int(
            str(raw.get("DISAGREEMENTS_PAGE_SIZE", defaults.disagreements_page_size))
        ),
    )


@functools.cache
def analytics_settings() -> AnalyticsSettings:
    """Return the ANALYTICS setting, typed and read once."""
    return _settings_from(getattr(settings, "ANALYTICS", {}))


@receiver(setting_changed)
def _analytics_settings_forget(*, setting: str, **kwargs: Any) -> None:
    """Forget the cached settings when a test overrides ANALYTICS."""
    if setting == "ANALYTICS":
        analytics_settings.cache_clear()
