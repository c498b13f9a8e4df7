"""A library module that changes a reference surrogate's class at import and hands on instances of it, as the
reference target builds its candidates: registry surrogates used as they are, whose code is no longer the
project's (Sigmoid's gradient doubled). Their programs are traced as the module left them, never read from the
programs the reference target keeps across runs (``verification.core.evaluate.kept``), so the differential check
fails Sigmoid; Arctan, untouched, passes."""

from __future__ import annotations

import surrogates
from verification.core.candidate import reference_candidates

_Sigmoid = surrogates.REGISTRY["Sigmoid"]
_grad = _Sigmoid._grad
_Sigmoid._grad = lambda self, x: 2.0 * _grad(self, x)  # every Sigmoid in this process: g doubled

CANDIDATES = [c for c in reference_candidates(["Sigmoid", "Arctan"]) if c.label in ("Sigmoid(alpha=4.0)",
                                                                                   "Arctan(alpha=1.0)")]
