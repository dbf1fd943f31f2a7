"""Batch inference: a drop read as ingest reads it, scored by a registered task model without HTTP."""
