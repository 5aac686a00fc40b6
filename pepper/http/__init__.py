"""pepper's HTTP service: the API (``create_app``), its tokens, its event stream.

Needs the ``http`` extra (FastAPI, uvicorn, httpx); nothing here is imported unless used, so
``pepper --help`` and the Python API do not load them.
"""
