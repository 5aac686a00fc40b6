"""pepper's HTTP service: the API (``create_app``), its tokens, its event stream.

Needs the ``http`` extra (FastAPI, uvicorn, httpx); nothing here is imported unless used, so
``pepper --help`` and the Python API do not load them.

Implementation, not public API: run the service with ``pepper serve``; names here may change without notice.
"""
