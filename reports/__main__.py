"""``python -m reports``: the HTML page, its Markdown twin and the plots, from the JSON that exists."""

from __future__ import annotations

import argparse
import glob
import sys
from pathlib import Path

from reports.build import generate


def main(argv: list[str] | None = None) -> int:
  parser = argparse.ArgumentParser(prog="python -m reports", description=__doc__.splitlines()[0])
  parser.add_argument("--verify", default="reports/verify.json", help="verification JSON (default: %(default)s)")
  parser.add_argument("--peers", default="reports/peers", help="folder of peer-library JSON (default: %(default)s)")
  parser.add_argument("--bench", default="reports/bench-*.json", help="glob of benchmark JSON (default: %(default)s)")
  parser.add_argument("--out", default="reports", help="output folder (default: %(default)s)")
  parser.add_argument("--only", action="append", default=[], metavar="NAME",
                      help="plot only these surrogates (repeat or comma-separate)")
  parser.add_argument("--no-plots", action="store_true", help="tables only, no PNGs")
  args = parser.parse_args(argv)
  only = {n for item in args.only for n in item.split(",") if n}
  if only:
    from surrogates import REGISTRY

    if only - set(REGISTRY):
      parser.error(f"unknown surrogates {sorted(only - set(REGISTRY))}; known: {', '.join(sorted(REGISTRY))}")
  peers = sorted(Path(args.peers).glob("*.json"))
  benches = sorted(Path(p) for p in glob.glob(args.bench))
  sources = {"peers": f"{args.peers}/*.json", "bench": args.bench}
  paths = generate(Path(args.verify), peers, benches, Path(args.out), only, plots=not args.no_plots, sources=sources)
  print(f"wrote {paths['html']} and {paths['md']}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
