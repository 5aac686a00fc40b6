"""Pure scheduling decisions: ready queues, eligibility, agent choice, balancing, estimates.

Implementation, not public API: import from ``pepper`` and ``pepper.core`` instead; names here may
change without notice.
"""
