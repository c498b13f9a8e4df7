"""Runs braintools' own surrogate test suites against the reference, through the name shim in ``shim/``.

    python tests/braintools_suites/run.py                      # braintools 0.3.0's sdist, from PyPI
    python tests/braintools_suites/run.py --version 0.2.0
    python tests/braintools_suites/run.py --source DIR         # an unpacked source tree (e.g. a GitHub snapshot)

The test modules of ``braintools/surrogate/`` are copied to a temporary folder and run by pytest with
``shim/`` first on the path, so ``import braintools.surrogate`` gives the reference's classes and
functional forms. ``_base_test.py`` is left out by default: it tests braintools' own primitive
(``braintools.surrogate._base``), which has no counterpart. Prints, per test module, passed/collected;
failures that are deliberate differences (:data:`DELIBERATE`) are counted by reason, any other is
listed with its test id and exception, and makes the exit status 1. Needs network (pip download) and
braintools' test dependencies (brainstate); it is not part of the CI suite.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tarfile
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
MODULES = ("_correctness_test.py", "_impl_test.py", "_impl_extra_test.py")

#: Deliberate differences from braintools: a failing test whose id contains a key is explained by its value.
DELIBERATE = {
    "test_grad_of_parameters": "d(spike)/dθ: the reference's is exactly 0 (H does not depend on θ); braintools 0.3.0's "
                               "primitive passes g's tangent to the output, and its test expects ∂g/∂θ",
    "test_surrogate_fun_not_implemented": "expects NotImplementedError from surrogate_fun; the reference declares P",
    "test_repr[sg14-GaussianGrad": "repr order: braintools prints alpha, sigma; the reference its declared "
                                   "(positional) order sigma, alpha",
    "test_n_equals_one_no_loop": "float32 cos(π/2)·0.5 = -2.2e-8 expected (allclose atol 1e-8); the reference gives 0",
}

#: braintools' assertion in its parameter-derivative tests, and the specification's (derivative exactly 0).
_THEIRS, _SPEC = "assert jnp.allclose(grad, expected)", "assert jnp.all(grad == 0)"


def sdist_tests(version: str, dest: Path) -> Path:
  """Downloads braintools==version's sdist and returns its ``braintools/surrogate`` folder, unpacked in dest."""
  subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", "-q",
                  f"braintools=={version}", "-d", str(dest)], check=True)
  (archive,) = dest.glob("braintools-*.tar.gz")
  with tarfile.open(archive) as tar:
    tar.extractall(dest, filter="data")
  (folder,) = dest.glob("braintools-*/braintools/surrogate")
  return folder


def _reason(element: ET.Element) -> str:
  """A failure's reason: the last ``E`` line of its traceback (the exception), else its message."""
  lines = [ln[1:].strip() for ln in (element.text or "").splitlines() if ln.startswith("E ")]
  reason = next((ln for ln in reversed(lines) if ln and not ln.startswith("+")), None)
  return (reason or (element.get("message") or "").strip().splitlines()[0])[:160]


def _zero_derivative(text: str) -> str:
  """braintools' assertion, in its parameter-derivative tests (``test_grad_of_parameters*``) only, made the spec's."""
  lines, inside, indent = [], False, 0
  for line in text.splitlines(keepends=True):
    stripped = line.lstrip()
    if stripped.startswith("def ") and (not inside or len(line) - len(stripped) <= indent):  # not a nested def
      inside, indent = stripped.startswith("def test_grad_of_parameters"), len(line) - len(stripped)
    lines.append(line.replace(_THEIRS, _SPEC) if inside else line)
  return "".join(lines)


def run(folder: Path, modules: tuple[str, ...], work: Path, zero_derivative: bool = False) -> int:
  """Runs the modules of ``folder`` against the shim; prints the counts; returns the number of failures
  that are not deliberate differences. ``zero_derivative``: the parameter-derivative tests assert the
  specification's 0 instead of braintools' ∂g/∂θ (every other line of the suites as published)."""
  suite = work / "suite"
  suite.mkdir()
  for m in modules:
    text = (folder / m).read_text()
    (suite / m).write_text(_zero_derivative(text) if zero_derivative else text)
  report = work / "junit.xml"
  env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE / "shim"), str(ROOT)])}
  subprocess.run([sys.executable, "-m", "pytest", *modules, "-q", "-p", "no:cacheprovider", "-p", "no:xdist",
                  "-c", os.devnull, "--rootdir", str(suite), f"--junitxml={report}"], cwd=suite, env=env, check=False,
                 stdout=subprocess.DEVNULL)
  cases = ET.parse(report).getroot().iter("testcase")
  by_module: dict[str, list[tuple[str, str | None]]] = {m: [] for m in modules}
  for case in cases:
    module = case.get("classname", "").split(".")[0] + ".py"
    bad = case.find("failure") if case.find("failure") is not None else case.find("error")
    message = None if bad is None else _reason(bad)
    by_module.setdefault(module, []).append((f"{case.get('classname')}::{case.get('name')}", message))
  failures, unexplained = 0, 0
  explained: dict[str, int] = {}
  for module, results in by_module.items():
    failed = [(t, m) for t, m in results if m is not None]
    failures += len(failed)
    print(f"{module}: {len(results) - len(failed)}/{len(results)} passed")
    for test, message in failed:
      reason = next((r for k, r in DELIBERATE.items() if k in test), None)
      if reason is None:
        unexplained += 1
        print(f"  FAIL {test}: {message}")
      else:
        explained[reason] = explained.get(reason, 0) + 1
  total = sum(len(r) for r in by_module.values())
  print(f"all: {total - failures}/{total} passed; failures that are deliberate differences:")
  for reason, count in explained.items():
    print(f"  {count:4d}  {reason}")
  print(f"other failures: {unexplained}")
  return unexplained


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--version", default="0.3.0", help="braintools release whose sdist is downloaded")
  parser.add_argument("--source", type=Path, help="an unpacked braintools source tree instead of the sdist")
  parser.add_argument("--modules", nargs="+", default=list(MODULES), help="test modules of braintools/surrogate")
  parser.add_argument("--zero-parameter-derivative", action="store_true",
                      help=f"rewrite {_THEIRS!r} to {_SPEC!r} (the specification's derivative of H in θ)")
  args = parser.parse_args()
  with tempfile.TemporaryDirectory() as tmp:
    work = Path(tmp)
    folder = args.source / "braintools" / "surrogate" if args.source else sdist_tests(args.version, work / "sdist")
    sys.exit(1 if run(folder, tuple(args.modules), work, args.zero_parameter_derivative) else 0)


if __name__ == "__main__":
  main()
