# ruff: noqa
from . import utils
from . import snn
