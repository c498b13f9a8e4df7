# ruff: noqa
from . import math
