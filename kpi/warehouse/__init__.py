"""The warehouse: the aggregator's private DuckDB database, the Parquet files it publishes,
the readers over them, and the indicators that run on those readers (SQL models in sql/)."""
