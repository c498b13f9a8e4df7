# ruff: noqa
from . import init
