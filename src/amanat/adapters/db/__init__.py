"""The only package that knows SQLAlchemy.

Statements on the request path are built once, at import, with ``bindparam`` placeholders,
and inserts pass their row as parameters instead of ``.values(...)``. Building a SQLAlchemy
construct and its cache key costs 0.1-0.25 ms of CPU per statement, more than the
statement's own round trip to a local database; a prebuilt statement's cache key is
memoized, so executing it costs only the lookup of its compiled form (bench/README.md,
"Where the time goes"). Statements off the request path are built where they are used.
"""
