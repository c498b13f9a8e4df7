"""A target module that loads a native library built with -ffast-math at import (``HOSTILE_FAST_MATH``: flush-
to-zero and denormals-are-zero for the thread), then gives a correct NumPy candidate: the worker sets the
floating-point control state back after loading (the checks compute their inputs bit-exactly, as the judge
does), so the candidate passes."""

import ctypes
import os

from tests.hostile import _numpy_sigmoid

_LIBRARY = ctypes.CDLL(os.environ["HOSTILE_FAST_MATH"])

CANDIDATES = [_numpy_sigmoid("correct, from a module that loads a fast-math library")]
