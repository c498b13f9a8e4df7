# ruff: noqa
import braintools

surrogate = braintools.surrogate
