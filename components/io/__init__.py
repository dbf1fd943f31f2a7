"""Reading hospital drops (WFDB, source adapters) and the canonical store."""
