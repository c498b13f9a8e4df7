"""``python -m verification``: check the reference, or ``--target`` another implementation.

Exit status: 0 every check passed (pass, skip, convention, or unsupported and not required);
1 a check failed or errored; 2 a usage error or a target that cannot be loaded; 3 an internal error
of the harness.
"""

from __future__ import annotations

import argparse
import math
import sys
import threading
import time
import traceback
from collections.abc import Callable

from verification import output
from verification.engine import runner
from verification.results import safe_text

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERNAL = 0, 1, 2, 3


class Progress:
  """Progress on stderr: a line per finished candidate, with the elapsed time and what failed."""

  def __init__(self, quiet: bool):
    self.done, self.quiet, self.start = 0, quiet, time.perf_counter()

  def __call__(self, label: str, results) -> None:
    self.done += 1
    if self.quiet:
      return
    bad = [r.check for r in results if r.failing]
    status = "ok" if not bad else "FAIL: " + ", ".join(bad)
    print(f"[{self.done:>3}] {time.perf_counter() - self.start:6.1f}s  {output.terminal_label(label)}  {status}",
          file=sys.stderr, flush=True)


class Partial:
  """The JSON of what finished so far, so that a killed run leaves it: written when a candidate finishes, at most
  once every :attr:`EVERY` seconds (rewriting the whole file after each candidate made a run's writing quadratic in
  its length: 2.5 s of the harness's CPU for the reference), and a candidate that finished within that time is
  written when it is up (a timer), unless the run ended first (:meth:`close`)."""

  EVERY = 5.0

  def __init__(self, write: Callable[[], None]):
    self.write, self.lock, self.last, self.timer, self.closed = write, threading.Lock(), -math.inf, None, False

  def __call__(self) -> None:
    with self.lock:
      wait = self.last + self.EVERY - time.monotonic()
      if self.closed or self.timer is not None:
        return
      if wait > 0:
        self.timer = threading.Timer(wait, self._due)
        self.timer.daemon = True
        self.timer.start()
      else:
        self._write()

  def _due(self) -> None:
    with self.lock:
      self.timer = None
      if not self.closed:
        self._write()

  def _write(self) -> None:
    self.last = time.monotonic()
    self.write()

  def close(self) -> None:
    """What finished and is not written yet, written now; no write after this returns."""
    with self.lock:
      self.closed = True
      if self.timer is not None:
        self.timer.cancel()
        self.timer = None
        self._write()


def _names(text: str) -> tuple[str, ...]:
  return tuple(n.strip() for n in text.split(","))


def _shard(text: str) -> tuple[int, int]:
  k, _, n = text.partition("/")
  try:
    return int(k), int(n)
  except ValueError:
    raise argparse.ArgumentTypeError(f"{text!r}: expected K/N, e.g. 1/4") from None


def _memory(text: str) -> int | None:
  """``8G``, ``512M``, a number of bytes, or ``none``."""
  if text.lower() in ("none", "0", "off"):
    return None
  units = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
  try:
    if text[-1].lower() in units:
      return int(float(text[:-1]) * units[text[-1].lower()])
    return int(text)
  except (ValueError, IndexError):
    raise argparse.ArgumentTypeError(f"{text!r}: expected bytes, or a number with K, M, G, or 'none'") from None


def parser() -> argparse.ArgumentParser:
  from verification import targets

  p = argparse.ArgumentParser(prog="python -m verification", description=__doc__.splitlines()[0],
                              epilog="Exit status: 0 passed, 1 a check failed or errored, 2 usage or target "
                                     "error, 3 internal error of the harness.")
  p.add_argument("--target", action="append", default=[],
                 help="MODULE:ATTR, or a built-in library: " + ", ".join(targets.builtin())
                 + " (NAME==VERSION to insist on a version); default: the reference itself. One per run")
  p.add_argument("--only", action="append", default=[], metavar="NAME",
                 help="only these surrogates or labels (repeat or comma-separate); an unknown name is an error")
  p.add_argument("--checks", type=_names, default=(), help="comma-separated subset of the checks (default: all)")
  p.add_argument("--dtypes", type=_names, default=runner.DTYPES, help="comma-separated float dtypes")
  p.add_argument("--json", metavar="PATH", help="write the run as JSON (rewritten after each candidate)")
  p.add_argument("--junit", metavar="PATH", help="write JUnit XML")
  p.add_argument("--jobs", type=int, default=0,
                 help="worker processes (default: one per core; never more than the cores or the candidates)")
  p.add_argument("--device", choices=("cpu", "gpu", "tpu"), default="",
                 help="where the candidates run (default: the device JAX finds; gpu or tpu fails at once if JAX "
                      "finds none)")
  p.add_argument("--timeout", type=float, default=120.0, help="time limit per check, seconds (the worker is ended)")
  p.add_argument("--memory-limit", type=_memory, default=runner.DEFAULT_MEMORY_LIMIT, metavar="BYTES",
                 help="resident-memory limit per worker and its descendants: bytes, or with K/M/G, or 'none' "
                      "(default: 8G)")
  p.add_argument("--examples", type=int, default=5,
                 help="hypothesis draws (512 values each) per 32/64-bit dtype in the edge check (>= 1)")
  p.add_argument("--require", type=_names, default=(), metavar="CAPS",
                 help="capabilities that must be present (forward, second, vmap, jit): unsupported ones fail")
  p.add_argument("--shard", type=_shard, metavar="K/N", help="only the K-th of N deterministic shards (by label)")
  p.add_argument("--quiet", action="store_true", help="no progress lines")
  p.add_argument("--profile", action="store_true",
                 help="print where the time went at the end, per worker and judge process: start, JAX import, "
                      "compilation, tracing, candidate code, checks, judging, waiting (also in the JSON's provenance)")
  p.add_argument("--debug", action="store_true", help="tracebacks for loading and internal errors")
  return p


def main(argv: list[str] | None = None) -> int:
  from verification.targets import TargetError

  p = parser()
  args = p.parse_args(argv)  # exits with 2 on a malformed argument
  options = runner.Options(checks=tuple(args.checks),
                           dtypes=tuple(args.dtypes), jobs=args.jobs, timeout=args.timeout,
                           memory_limit=args.memory_limit, device=args.device, hypothesis_examples=args.examples,
                           require=tuple(c for c in args.require if c), shard=args.shard,
                           only=tuple(n.strip() for item in args.only for n in item.split(",")),
                           profile=args.profile)
  try:
    if len(args.target) > 1:  # one run checks one target: a second would otherwise silently replace the first
      raise runner.UsageError(f"--target given more than once ({', '.join(map(safe_text, args.target))}): a run checks "
                              "one target; run the command once per target (each has its own exit status and reports)")
    target = args.target[0] if args.target else None
    if any(not n for n in options.only):
      raise runner.UsageError("--only: empty name")
    runner.validate(options)
    for path, what in ((args.json, "--json"), (args.junit, "--junit")):
      if path:
        output.check_writable(path, what)
  except ValueError as exc:
    p.print_usage(sys.stderr)
    print(f"{p.prog}: error: {exc}", file=sys.stderr)
    return EXIT_USAGE

  finished: list = []

  def on_result(result) -> None:
    finished.append(result)

  progress = Progress(args.quiet)
  partial = Partial(lambda: output.write_json(args.json, runner.Run(
      target=target or "reference", results=tuple(finished), checks=options.checks or runner.all_checks())))

  def after_candidate(label, results) -> None:
    progress(label, results)
    if args.json:  # what finished so far survives a killed run
      partial()

  start = time.perf_counter()
  try:
    try:
      run = runner.run(target, options, progress=after_candidate, on_result=on_result)
    finally:
      partial.close()
  except (TargetError, runner.UsageError) as exc:
    if args.debug:
      traceback.print_exc()
    print(f"{p.prog}: error: {exc}", file=sys.stderr)
    return EXIT_USAGE
  except Exception as exc:
    if args.debug:
      traceback.print_exc()
    print(f"{p.prog}: internal error of the harness: {type(exc).__name__}: {exc}"
          + ("" if args.debug else " (--debug for the traceback)"), file=sys.stderr)
    return EXIT_INTERNAL
  elapsed = time.perf_counter() - start
  output.summary(run.results, run.checks)
  n = len({r.label for r in run.results})
  platform = run.environment.get("platform") or run.environment.get("backend") or "?"
  print(f"{n} candidates, {len(run.checks)} checks, {elapsed:.1f} s ({run.target}; on {platform}, "
        f"{run.provenance.get('workers', '?')} workers)")
  if run.provenance.get("dtypes_not_available"):
    print(f"not checked: {', '.join(run.provenance['dtypes_not_available'])} (not available on {platform})")
  if "profile" in run.provenance:
    from verification.engine import profile

    print(profile.table(run.provenance["profile"]))
  lost = False
  for path, write in ((args.json, output.write_json), (args.junit, output.write_junit)):
    if path:  # a failure writing one output never loses the others
      try:
        write(path, run)
      except Exception as exc:
        lost = True
        print(f"{p.prog}: internal error of the harness: could not write {path}: {type(exc).__name__}: "
              f"{safe_text(exc, 500)}", file=sys.stderr)
  if lost:
    return EXIT_INTERNAL
  return EXIT_FAILED if not run.passed else EXIT_OK


if __name__ == "__main__":
  sys.exit(main())
