"""Throughput benchmarks of the reference surrogates (pytest-benchmark).

Run with ``nox -s bench`` or ``pytest benchmarks``; see ``benchmarks/conftest.py`` for the options.
"""
