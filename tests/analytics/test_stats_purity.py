"""The statistics and summaries packages stay free of Django, so they run in a notebook."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import pytest

import analytics.stats
import analytics.summaries

PURE_MODULES = sorted(
    f"{package.__name__}.{module.name}"
    for package in (analytics.stats, analytics.summaries)
    for module in pkgutil.iter_modules(package.__path__)
)


def test_the_pure_packages_have_modules_to_check() -> None:
    assert {"analytics.stats.agreement", "analytics.summaries.drift"} <= set(PURE_MODULES)


@pytest.mark.parametrize("module", PURE_MODULES)
def test_pure_module_imports_no_django(module: str) -> None:
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
