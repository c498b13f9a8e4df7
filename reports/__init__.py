"""Reports a person reads: ``python -m reports`` turns the JSON of ``verify`` and ``bench`` into
``reports/index.html`` (a static page) and ``reports/index.md``, with plots under ``reports/img/``.

The parts are rendered from what exists: the verification matrix once ``reports/verify.json`` does,
peer conformance once ``reports/peers/*.json`` do, benchmark tables once ``reports/bench-*.json`` do.
"""
