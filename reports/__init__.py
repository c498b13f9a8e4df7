"""Reports a person reads: ``python -m reports`` turns the JSON of ``verify`` and ``bench`` into
``results/report/index.html`` (a static page) and ``results/report/index.md``, with plots under
``results/report/img/``;
``python -m reports.findings`` writes the README's findings tables.

The parts are rendered from what exists: the verification matrix from ``results/out/verify.json``
(what ``nox -s verify`` writes; else the committed ``results/verify.json``, with a note), peer
conformance from ``results/peers/*.json``, benchmark tables from ``results/bench-*.json``. Inputs
are read only through :mod:`verification.results` (no jax, no engine): see :mod:`reports.data`.
"""
