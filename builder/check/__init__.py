"""Static checks of built artifacts (`builder check`): one module per concern, findings with ids."""

from builder.check.context import CheckOptions
from builder.check.findings import CheckReport, Finding, Severity
from builder.check.runner import run_checks

__all__ = ["CheckOptions", "CheckReport", "Finding", "Severity", "run_checks"]
