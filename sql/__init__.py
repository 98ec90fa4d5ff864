"""The warehouse's SQL models, shipped as the package data `kpi.sql` (see pyproject.toml).

Read by name with kpi.warehouse.models; DuckDB dialect, `$named` parameters."""
