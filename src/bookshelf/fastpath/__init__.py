"""The fast path: every piece of Bookshelf that reaches into FastAPI's, Starlette's or
SQLAlchemy's internals, and the only modules allowed to (``tests/fastpath/test_boundary.py``).

Each piece makes a request cheaper by doing what a public part does, for less, and names the
public behaviour it reproduces and the release it was checked against:

- ``params``: path, query and header parameters read on a plan made once per route;
- ``routes``: the routes copied onto the app's own list, with handlers that read the plan and
  run dependencies' exits without generators;
- ``exits``: those exits, on the stack FastAPI runs once the handler has returned;
- ``middleware``: FastAPI's middleware stack without its telemetry and body-limit layers;
- ``statements``: SQL statements compiled once per shape, keyed as SQLAlchemy keys them.

``BOOKSHELF_FAST_PATH=false`` (``Settings.fast_path``) builds the app from stock parts only:
plain ``FastAPI``, ``APIRoute``, ``include_router``, dependencies with ``yield``, statements
compiled each time. It answers exactly as the fast path does (the HTTP-level tests run in both
modes) and is the operator's escape hatch after a framework upgrade. bench/RESULTS.md says
what each piece buys.
"""
