"""``python -m surrogates``: the registry with each surrogate's g(0), mass and kinks."""

from __future__ import annotations

import surrogates


def main() -> None:
  rows = [("surrogate", "g(0)", "mass", "kinks", "smoothness")]
  for s in surrogates.instances():
    kinks = ", ".join(f"{k:g}" for k in s.kinks()) or "-"
    rows.append((repr(s), f"{float(s.surrogate_grad(0.0)):.6g}", f"{s.mass():g}", kinks, s.smoothness))
  widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
  for r in rows:
    print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)))


if __name__ == "__main__":
  main()
