"""Statistics that the SQL models call where SQL alone cannot: DuckDB functions over SciPy.

    from kpi.warehouse.statistics import install
    install(con)
    con.sql("select binomial_p_value(18, 20, 0.5)")  # 0.000402...

`binomial_p_value(k, n, q)` is the two-sided exact binomial test of k successes out of n when
each succeeds with probability q: the smaller tail (k or fewer, k or more) doubled, at most 1.
It is vectorised: DuckDB hands it whole columns as Arrow arrays.
"""

from __future__ import annotations

import duckdb
import numpy as np
import pyarrow as pa


def binomial_p_values(k: np.ndarray, n: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Two-sided exact binomial p-values, element by element (1.0 where n is 0)."""
    from scipy import stats  # imported on first use: most readers never run a test

    k = np.asarray(k, dtype=np.float64)
    n = np.asarray(n, dtype=np.float64)
    q = np.clip(np.asarray(q, dtype=np.float64), 0.0, 1.0)
    lower = stats.binom.cdf(k, n, q)
    upper = stats.binom.sf(k - 1, n, q)
    p = np.minimum(1.0, 2.0 * np.minimum(lower, upper))
    return np.where((n > 0) & np.isfinite(p), p, 1.0)


def _binomial_p_value(k: pa.Array, n: pa.Array, q: pa.Array) -> pa.Array:
    return pa.array(binomial_p_values(
        k.to_numpy(zero_copy_only=False), n.to_numpy(zero_copy_only=False),
        q.to_numpy(zero_copy_only=False)), type=pa.float64())


def install(con: duckdb.DuckDBPyConnection) -> None:
    """Register the functions on a connection (its cursors see them too)."""
    con.create_function("binomial_p_value", _binomial_p_value, ["BIGINT", "BIGINT", "DOUBLE"],
                        "DOUBLE", type="arrow", null_handling="default", side_effects=False)
