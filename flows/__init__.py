"""Prefect flows: thin orchestration over :mod:`components` (the work lives there)."""
