"""Alembic migrations of the academy database (linear history, one file per change)."""
