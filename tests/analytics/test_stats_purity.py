"""The statistics, summaries and gate rules stay free of Django, so they run in a notebook."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import pytest

import analytics.stats
import analytics.summaries

# The gate package also holds its Django side (evidence, policy, evaluation); these are pure.
PURE_GATE_MODULES = [
    f"analytics.gate.{name}"
    for name in ("audit_rules", "display", "inputs", "needs", "rules", "streams")
]
PURE_MODULES = sorted(
    [
        f"{package.__name__}.{module.name}"
        for package in (analytics.stats, analytics.summaries)
        for module in pkgutil.iter_modules(package.__path__)
    ]
    + PURE_GATE_MODULES
)


def test_the_pure_packages_have_modules_to_check() -> None:
    expected = {"analytics.stats.agreement", "analytics.stats.paired", "analytics.summaries.drift"}
    assert expected <= set(PURE_MODULES)


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
