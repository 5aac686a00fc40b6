"""The ``pepper`` command: argument parsing, calls into ``pepper.core``, exit codes.

Implementation, not public API: import from ``pepper`` and ``pepper.core`` instead; names here may
change without notice.
"""
