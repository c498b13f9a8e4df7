"""``python -m verification``: check the reference, or ``--target`` another implementation.

Exit status 0 when every check passes (or is skipped), 1 when anything fails or errors, 2 on
usage errors.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
import time

import jax

jax.config.update("jax_enable_x64", True)

from verification import output  # noqa: E402
from verification.candidate import builtin_targets, load_candidates, resolve_target, select  # noqa: E402
from verification.checks import CHECKS  # noqa: E402
from verification.runner import verify, verify_in_processes  # noqa: E402


class Progress:
  """Progress on stderr: a line per finished candidate, with the elapsed time and what failed."""

  def __init__(self, total: int, quiet: bool):
    self.total, self.done, self.quiet, self.start = total, 0, quiet, time.perf_counter()

  def __call__(self, candidate, results) -> None:
    self.done += 1
    if self.quiet:
      return
    bad = [r.check for r in results if r.status in ("fail", "error")]
    status = "ok" if not bad else "FAIL: " + ", ".join(bad)
    print(f"[{self.done:>3}/{self.total}] {time.perf_counter() - self.start:6.1f}s  {candidate.label}  {status}",
          file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
  parser = argparse.ArgumentParser(prog="python -m verification", description=__doc__.splitlines()[0])
  parser.add_argument("--target", help="MODULE:ATTR, or a built-in library: " + ", ".join(builtin_targets())
                      + " (NAME==VERSION to insist on a version); default: the reference itself")
  parser.add_argument("--only", action="append", default=[], metavar="NAME",
                      help="only these surrogates (repeat or comma-separate)")
  parser.add_argument("--checks", default=",".join(CHECKS), help=f"comma-separated subset of {', '.join(CHECKS)}")
  parser.add_argument("--dtypes", default="float16,bfloat16,float32,float64", help="comma-separated float dtypes")
  parser.add_argument("--json", metavar="PATH", help="write one record per (candidate, check)")
  parser.add_argument("--junit", metavar="PATH", help="write JUnit XML")
  parser.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1), help="candidates in parallel")
  parser.add_argument("--timeout", type=float, default=120.0, help="time limit per check, seconds")
  parser.add_argument("--examples", type=int, default=5,
                      help="hypothesis draws (512 values each) per 32/64-bit dtype in the edge check")
  parser.add_argument("--quiet", action="store_true", help="no progress lines")
  args = parser.parse_args(argv)

  checks = [c for c in args.checks.split(",") if c]
  unknown = [c for c in checks if c not in CHECKS]
  if unknown:
    parser.error(f"unknown checks {unknown}; known: {', '.join(CHECKS)}")
  dtypes = [d for d in args.dtypes.split(",") if d]
  unknown = [d for d in dtypes if d not in ("float16", "bfloat16", "float32", "float64")]
  if unknown:
    parser.error(f"unknown dtypes {unknown}")
  only = {n for item in args.only for n in item.split(",") if n}

  everything, target, library, is_reference = resolve_target(args.target)
  loader = functools.partial(load_candidates, args.target, frozenset(only))  # for the worker processes
  candidates = select(everything, frozenset(only))
  if not candidates:
    parser.error("no candidates to check (see --target and --only)")

  start = time.perf_counter()
  options = {"is_reference": is_reference, "time_limit": args.timeout, "hypothesis_examples": args.examples}
  progress = Progress(len(candidates), args.quiet)
  if args.jobs > 1 and len(candidates) > 1:
    results = verify_in_processes(loader, checks, dtypes, jobs=args.jobs, progress=progress, candidates=candidates,
                                  **options)
  else:
    results = verify(candidates, checks, dtypes, jobs=1, progress=progress, **options)
  elapsed = time.perf_counter() - start
  output.summary(results, checks)
  print(f"{len(candidates)} candidates, {len(checks)} checks, {elapsed:.1f} s ({target})")
  if args.json:
    output.write_json(args.json, results, target, library)
  if args.junit:
    output.write_junit(args.junit, results, target)
  return 1 if any(r.status in ("fail", "error") for r in results) else 0


if __name__ == "__main__":
  sys.exit(main())
