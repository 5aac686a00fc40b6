"""Pure monitoring rules: metric windows, health verdicts, alert rules.

Implementation, not public API: import from ``pepper`` and ``pepper.core`` instead; names here may
change without notice.
"""
