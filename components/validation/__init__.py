"""Data validation: policy-driven GX suites over quality features, quarantine, steward review, reports."""

from components.validation.policy import ExpectationSpec, Policy, load_policy
from components.validation.quarantine import EXCLUDED_STATUSES, excluded_ids
from components.validation.result import ValidationResult
from components.validation.review import (
    ReviewError,
    decide,
    excluded_records,
    latest_run_dir,
    list_quarantined,
    validation_exclusions,
)
from components.validation.stage import ValidateOptions, record_validation, validate, version_validated

__all__ = [
    "EXCLUDED_STATUSES",
    "ExpectationSpec",
    "Policy",
    "ReviewError",
    "ValidateOptions",
    "ValidationResult",
    "decide",
    "excluded_ids",
    "excluded_records",
    "latest_run_dir",
    "list_quarantined",
    "load_policy",
    "record_validation",
    "validate",
    "validation_exclusions",
    "version_validated",
]
