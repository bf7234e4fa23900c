"""Persistence: SQLAlchemy tables, the database handle, directory snapshots and migrations."""
