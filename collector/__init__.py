"""The ingestion API: implementers POST usage events here."""
