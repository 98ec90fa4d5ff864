"""The ingest store (SQLite or PostgreSQL): its tables, and the registry of implementers,
API keys and dashboard users kept in it."""
