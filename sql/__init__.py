"""One SQL file per KPI indicator, read by kpi.indicators (DuckDB, `$named` parameters)."""
