"""Verification of surrogate-gradient implementations against the reference.

``python -m verification`` (or ``nox -s verify``) checks every registry surrogate at each of its
representative parameter sets; ``--target MODULE:ATTR`` checks another implementation.
"""

from verification.candidate import Candidate, as_candidate, load_target, reference_candidates
from verification.checks import CHECKS
from verification.runner import Result, verify, verify_candidate

__all__ = ["CHECKS", "Candidate", "Result", "as_candidate", "load_target", "reference_candidates", "verify",
           "verify_candidate"]
