"""pepper's HTTP service and its remote client; needs the `http` extra.

Implementation, not public API: import from ``pepper`` and ``pepper.core`` instead; names here may
change without notice.
"""
