# ruff: noqa
from . import math
from . import state
