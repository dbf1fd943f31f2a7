"""Errors of drift monitoring."""

from components.errors import UserError


class MonitoringError(UserError, ValueError):
    """Monitoring cannot run as asked: an unknown or malformed policy, inputs that do not fit it."""
