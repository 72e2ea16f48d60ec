"""The statistics package stays free of Django, so it runs from a plain notebook."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import pytest

import analytics.stats

STATS_MODULES = sorted(
    f"analytics.stats.{module.name}" for module in pkgutil.iter_modules(analytics.stats.__path__)
)


def test_the_stats_package_has_modules_to_check() -> None:
    assert "analytics.stats.agreement" in STATS_MODULES


@pytest.mark.parametrize("module", STATS_MODULES)
def test_stats_module_imports_no_django(module: str) -> None:
    # A fresh interpreter: the test process itself has Django loaded already.
    script = (
        f"import sys, {module}\n"
        "loaded = sorted(m for m in sys.modules if m == 'django' or m.startswith('django.'))\n"
        "print(','.join(loaded))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == ""
