"""The application: the `esco-kpi` command line, the server that joins the collector and the
dashboard, the aggregation schedule and the demo. The only package that imports all three of
kpi, collector and dashboard."""
