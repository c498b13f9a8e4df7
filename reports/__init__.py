"""Reports a person reads: ``python -m reports`` turns the JSON of ``verify`` and ``bench`` into
``reports/index.html`` (a static page) and ``reports/index.md``, with plots under ``reports/img/``;
``python -m reports.findings`` writes the README's findings tables.

The parts are rendered from what exists: the verification matrix from ``reports/out/verify.json``
(what ``nox -s verify`` writes; else the committed ``reports/verify.json``, with a note), peer
conformance from ``reports/peers/*.json``, benchmark tables from ``reports/bench-*.json``. Inputs
are read only through :mod:`verification.results` (no jax, no engine): see :mod:`reports.data`.
"""
