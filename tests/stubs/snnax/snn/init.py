# ruff: noqa
"""Stand-in for snnax.snn.init (imported by snnax.snn at import; the surrogates do not use it)."""
