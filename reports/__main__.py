"""``surrogate-report``: the HTML page, its Markdown twin and the plots, from the JSON that exists.

Installed with the harness as the console script ``surrogate-report`` (module ``surrogate_reports``); in a
checkout, ``python -m reports`` runs the same.

Verification results are read from ``--verify`` (repeat it to merge the shards of one run), by
default ``results/out/verify.json`` (what ``nox -s verify`` writes), else the committed
``results/verify.json`` with a visible note. An input that cannot be read is named with its problem
on stderr and on the page, and the rest is rendered.

Exit status: 0 the report was written from every input; 1 it was written, but some input was left
out (unreadable, malformed, or shards that cannot be merged); 2 a usage error (an output folder that
cannot be written, an unknown ``--only`` name), found before any work.
"""

from __future__ import annotations

import argparse
import glob
import sys
from pathlib import Path

from . import data
from .build import generate


def prog() -> str:
  """How this command was run, for its usage line: the console script (``surrogate-report``) where it was
  run as one, else ``python -m`` and the package's name where it is installed or checked out."""
  script = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else ""
  return script.removesuffix(".exe") if script.startswith("surrogate-report") else f"python -m {__package__}"


def main(argv: list[str] | None = None) -> int:
  parser = argparse.ArgumentParser(prog=prog(), description=__doc__.splitlines()[0])
  parser.add_argument("--verify", action="append", default=[], metavar="PATH",
                      help=f"verification JSON; repeat to merge shards (default: {data.DEFAULT_VERIFY}, "
                           f"else {data.COMMITTED_VERIFY})")
  parser.add_argument("--peers", default="results/peers", help="folder of peer-library JSON (default: %(default)s)")
  parser.add_argument("--bench", default="results/bench-*.json", help="glob of benchmark JSON (default: %(default)s)")
  parser.add_argument("--out", default="results/report", help="output folder (default: %(default)s)")
  parser.add_argument("--only", action="append", default=[], metavar="NAME",
                      help="plot only these surrogates (repeat or comma-separate)")
  parser.add_argument("--no-plots", action="store_true", help="tables only, no PNGs")
  args = parser.parse_args(argv)
  out = Path(args.out)
  why = data.check_output(out)
  if why:
    parser.error(why)
  only = {n for item in args.only for n in item.split(",") if n}
  verify, committed = ([Path(p) for p in args.verify], False) if args.verify else data.default_verify()
  peers = sorted(Path(args.peers).glob("*.json"))
  benches = sorted(Path(p) for p in glob.glob(args.bench))
  asked = {"verify": ", ".join(map(str, verify)), "peers": f"{args.peers}/*.json", "bench": args.bench}
  inputs = data.load(verify, peers, benches, committed_default=committed, asked=asked)
  if only and inputs.verify is not None:
    known = {r.surrogate for r in inputs.verify.results}
    if only - known:
      parser.error(f"--only: {', '.join(sorted(only - known))} not in the verification results; "
                   f"known: {', '.join(sorted(known))}")
  for line in [f"not read: {p.line}" for p in inputs.problems] + inputs.warnings:
    print(f"python -m reports: {line}", file=sys.stderr)
  paths = generate(inputs, out, only, plots=not args.no_plots)
  print(f"wrote {paths['html']} and {paths['md']}")
  return 1 if inputs.problems else 0


if __name__ == "__main__":
  sys.exit(main())
