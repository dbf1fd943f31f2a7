"""Alembic migrations of the registry schema (run through components.registry.db)."""
