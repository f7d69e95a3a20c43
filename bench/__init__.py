"""The benchmark suite: ``make bench`` (full run) and ``make bench-smoke`` (correctness only).

See bench/README.md. Nothing here is imported by the product; the bench drives the product
from outside (HTTP with wrk and a bounded Python client) and reads the database to check
that what the load did is correct.
"""
