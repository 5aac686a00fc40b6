"""Durability behind one ``Store`` protocol (``protocol.py``); SQLite is the embedded implementation.

Implementation, not public API: import from ``pepper`` and ``pepper.core`` instead; names here may
change without notice.
"""
