"""Where an attempt runs: the engine's loop, a thread, a subprocess, or a Ray actor (``protocol``).

Every executor passes one contract suite (``tests/contract/test_executors.py``).
"""
