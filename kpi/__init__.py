"""esco-kpi's core: settings and vocabulary, the ingest store, the catalogue, the warehouse
(aggregation and indicators), exports and operations. Imports neither the HTTP edges nor the
application (see docs/ARCHITECTURE.md)."""

__version__ = "0.1.0"
