"""Frozen records and pure rules shared by every layer: tasks, states, events and actions.

Implementation, not public API: import from ``pepper`` and ``pepper.core`` instead; names here may
change without notice.
"""
