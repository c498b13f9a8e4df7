"""A target module that rebinds the judge at import (the checks' comparison helpers and numpy's
allclose, so that every comparison passes), then gives a candidate with half the right gradient."""

import numpy as np

from tests.hostile import PATCHES
from verification.checks import _context

_worst = _context.worst
_context.worst = lambda *args, **kwargs: {**_worst(*args, **kwargs), "failing_points": 0}
_context.Comparisons.compare = lambda self, *args, **kwargs: None
np.allclose = lambda *args, **kwargs: True

CANDIDATES = [PATCHES[1]]
