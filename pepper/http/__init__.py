"""pepper's HTTP service (the API, its tokens, its event stream) and its remote client (``pepper.connect``).

Needs the ``http`` extra (FastAPI, uvicorn, httpx); nothing here is imported unless used, so
``pepper --help`` and the Python API do not load them. Implementation, not public API: import from
``pepper`` and ``pepper.core`` instead; names here may change without notice.
"""
