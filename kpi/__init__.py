"""esco-kpi's core: settings, stores, catalogue, aggregation, indicators, export, command line."""

__version__ = "0.1.0"
