"""The engine: the imperative shell around the pure state machine, and the only owner of live state.

Implementation, not public API: import from ``pepper`` and ``pepper.core`` instead; names here may
change without notice.
"""
