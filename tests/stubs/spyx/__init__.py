# ruff: noqa
# A stand-in for spyx 1.0.0 (tests/stubs/README.md): axn as released, nn.LIF without flax.
