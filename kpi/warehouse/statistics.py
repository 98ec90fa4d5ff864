"""Statistics that the SQL models call where SQL alone cannot: DuckDB functions over SciPy.

    from kpi.warehouse.statistics import install
    install(con)
    con.sql("select fold_change_p_value(18, 20, 0.5, 0.5)")  # 0.000402...

`fold_change_p_value(k, n, q_up, q_down)` tests k successes out of n against "the rate changed
by less than a given fold": k is too many if the rate were q_up (the largest rate within that
fold) or too few if it were q_down (the smallest). The p-value is the smaller exact binomial
tail, P(X >= k | q_up) or P(X <= k | q_down), doubled, at most 1. With q_up = q_down = q it is
the ordinary two-sided exact binomial test of the rate q. The functions are vectorised: DuckDB
hands them whole columns as Arrow arrays.
"""

from __future__ import annotations

import duckdb
import numpy as np
import pyarrow as pa


def fold_change_p_values(k: np.ndarray, n: np.ndarray, q_up: np.ndarray,
                         q_down: np.ndarray) -> np.ndarray:
    """Two-sided exact binomial p-values against an interval of rates, element by element
    (1.0 where n is 0)."""
    # scipy.special, not scipy.stats: a third of the import time, for the same two tails
    from scipy.special import bdtr, bdtrc

    k = np.asarray(k, dtype=np.int64)
    n = np.asarray(n, dtype=np.int64)
    q_up = np.clip(np.asarray(q_up, dtype=np.float64), 0.0, 1.0)
    q_down = np.clip(np.asarray(q_down, dtype=np.float64), 0.0, 1.0)
    # Where k lies between the two rates' means (n q_down <= k <= n q_up), each tail holds the
    # binomial's median, so each is at least 1/2 and the p-value is 1: most items of a trend
    # test, whose tails cost most of its time. The margin keeps rounding out of that.
    margin = 1e-9 * np.maximum(n, 1)
    tested = ~((k >= n * q_down + margin) & (k <= n * q_up - margin))
    p = np.ones(k.shape, dtype=np.float64)
    k, n, q_up, q_down = k[tested], n[tested], q_up[tested], q_down[tested]
    with np.errstate(invalid="ignore"):
        # P(X >= k) = P(X > k - 1), and 1 for k = 0
        upper = np.where(k > 0, bdtrc(np.maximum(k - 1, 0), n, q_up), 1.0)
        lower = bdtr(k, n, q_down)  # P(X <= k)
    both = np.minimum(1.0, 2.0 * np.minimum(lower, upper))
    p[tested] = np.where((n > 0) & np.isfinite(both), both, 1.0)
    return p


def preload() -> None:
    """Import what the functions need now, not in the first request that runs a test."""
    import scipy.special  # noqa: F401


def _fold_change_p_value(k: pa.Array, n: pa.Array, q_up: pa.Array, q_down: pa.Array
                         ) -> pa.Array:
    return pa.array(fold_change_p_values(*(a.to_numpy(zero_copy_only=False)
                                           for a in (k, n, q_up, q_down))), type=pa.float64())


def install(con: duckdb.DuckDBPyConnection) -> None:
    """Register the functions on a connection (its cursors see them too)."""
    con.create_function("fold_change_p_value", _fold_change_p_value,
                        ["BIGINT", "BIGINT", "DOUBLE", "DOUBLE"], "DOUBLE", type="arrow",
                        side_effects=False)
