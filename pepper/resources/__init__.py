"""Pure resource bookkeeping: the pool, leases and budgets, what fits where.

Implementation, not public API: import from ``pepper`` and ``pepper.core`` instead; names here may
change without notice.
"""
