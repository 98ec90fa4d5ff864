"""The review loop: ESCO's editors decide on each suggestion that implementers sent (candidate
alternative labels, new concept proposals, translation feedback) and hand the accepted ones
over.

    items.py      review items: their stable ids and their evidence over all time (SQL model
                  sql/review_items.sql on a warehouse reader)
    decisions.py  statuses, and decisions appended to the audit trail in the ingest store
    reconcile.py  marking items that the newest loaded ESCO release holds
    handover.py   the hand-over files: changes.csv, changes.ttl (SKOS), manifest.json
    summary.py    per kind and language: items by status, and how long decisions take
    contributions.py  one implementer's items, its own spelling and their statuses
                  (sql/implementer_suggestions.sql; GET /v1/me/suggestions)

Decisions live in the ingest store (table review_decisions, keyed by item id), so they
survive a rebuild of the warehouse.
"""

from __future__ import annotations


class ReviewError(Exception):
    """A review request that cannot be carried out; the message says why, in one line."""
