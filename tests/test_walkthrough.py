"""The new user's walk-through, as the README tells it, in a scratch project outside the repository.

1. ``pip install`` the harness from the repository (here ``--no-deps --target``: the dependencies
   are those of this environment; a user's ``pip install`` gets them from the index);
2. write a candidate module (one correct candidate, two planted bugs) and a three-line test file
   using only the documented plugin marker;
3. run ``pytest -n 2``: one item per (candidate, check); the planted bugs fail with their diagnosis,
   the correct candidate does not fail;
4. the console scripts: ``surrogate-verify`` checks a surrogate, ``surrogate-report`` renders its JSON.

The installed distribution claims no generic top-level names: ``surrogates``, ``verification`` and
``surrogate_reports`` (the repository's ``reports/`` code), no ``reports`` or ``benchmarks``.
"""

import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

from tests._subprocess import environment
from verification.checks import CHECKS

ROOT = Path(__file__).resolve().parents[1]

CANDIDATES = '''
"""Three spike functions written with jax.custom_jvp: one correct, two with planted bugs."""

import jax
import jax.numpy as jnp


def spike_function(g, bug=None):
  @jax.custom_jvp
  def spike(x):
    return jnp.heaviside(x, 1.0).astype(x.dtype)

  @spike.defjvp
  def jvp(primals, tangents):
    (x,), (t,) = primals, tangents
    return spike(x), g(x) if bug == "ignores the tangent" else g(x) * t

  return spike


def inv_square(k):
  def g(x):
    r = 1 / (1 + k * jnp.abs(x))
    return r * r
  return g


def logistic_density(x):  # planted: the factor alpha = 4 is missing
  s = jax.nn.sigmoid(4 * x)
  return s * (1 - s)


CANDIDATES = [
    {"name": "fast_sigmoid", "params": {"slope": 25.0}, "fn": spike_function(inv_square(25.0))},
    {"name": "sigmoid", "params": {"alpha": 4.0}, "label": "sigmoid-missing-alpha",
     "fn": spike_function(logistic_density)},
    {"name": "superspike", "params": {"k": 10.0}, "label": "superspike-ignores-tangent",
     "fn": spike_function(inv_square(10.0), bug="ignores the tangent")},
]
'''

TEST_FILE = '''\
import pytest

pytestmark = pytest.mark.surrogate_target("mycands:CANDIDATES")
'''

PACKAGE_FILES = ("pyproject.toml", "README.md", "surrogates", "verification", "benchmarks", "reports")


def test_walkthrough(tmp_path):
  # 1. install from a copy of the sources (pip builds in the source tree; keep the repository clean)
  src = tmp_path / "src"
  for name in PACKAGE_FILES:
    path = ROOT / name
    if path.is_dir():
      shutil.copytree(path, src / name, ignore=shutil.ignore_patterns("__pycache__", "out", "img"))
    else:
      src.mkdir(exist_ok=True)
      shutil.copy(path, src / name)
  site = tmp_path / "site"
  subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                  "--target", str(site), str(src)], check=True, capture_output=True, timeout=300)
  assert list(site.glob("surrogate_harness-*.dist-info"))
  installed = {p.name for p in site.iterdir() if (p / "__init__.py").exists()}
  assert installed == {"surrogates", "verification", "surrogate_reports"}, installed

  # 2. a project of one's own: a candidate module and a three-line test file
  project = tmp_path / "mylib"
  project.mkdir()
  (project / "mycands.py").write_text(textwrap.dedent(CANDIDATES))
  (project / "test_surrogates.py").write_text(TEST_FILE)
  assert len(TEST_FILE.splitlines()) == 3

  # 3. pytest -n 2, the plugin found through its entry point; only the installed copy is importable
  env = {**environment(), "PYTHONPATH": str(site)}
  proc = subprocess.run([sys.executable, "-m", "pytest", "-n", "2", "-v", "-p", "no:cacheprovider"], cwd=project,
                        env=env, capture_output=True, text=True, timeout=900)
  out = proc.stdout
  assert proc.returncode == 1, out + proc.stderr
  assert f"{site}" in subprocess.run([sys.executable, "-c", "import verification; print(verification.__file__)"],
                                     cwd=project, env=env, capture_output=True, text=True).stdout
  items = dict(
      (item, status) for status, item in
      re.findall(r"(PASSED|FAILED|SKIPPED|ERROR) test_surrogates\.py::mycands:CANDIDATES::(\S+?\])", out))
  labels = ("fast_sigmoid(slope=25.0)", "sigmoid-missing-alpha", "superspike-ignores-tangent")
  assert sorted(items) == sorted(f"{label}[{check}]" for label in labels for check in CHECKS), out
  assert all(items[f"{labels[0]}[{check}]"] in ("PASSED", "SKIPPED") for check in CHECKS), out
  assert items["sigmoid-missing-alpha[differential]"] == "FAILED"
  assert items["superspike-ignores-tangent[forward_mode]"] == "FAILED"  # its VJP is 0, consistently
  # the diagnoses: where, expected, got, tolerance
  assert re.search(r"sigmoid-missing-alpha \[differential\] fail: g differs from the reference .*\n"
                   r"x = 0\.0, expected 1\.0, got 0\.25, tolerance", out), out
  assert re.search(r"superspike-ignores-tangent \[forward_mode\] fail: .*JVP is not g\(x\)·t\nx = .*, expected .*, "
                   r"got .*, tolerance", out), out


  # 4. the console scripts, from the installed copy only
  verify_json = project / "verify.json"
  proc = subprocess.run([str(site / "bin" / "surrogate-verify"), "--only", "Sigmoid", "--checks", "forward",
                         "--dtypes", "float32", "--quiet", "--json", str(verify_json)], cwd=project, env=env,
                        capture_output=True, text=True, timeout=600)
  assert proc.returncode == 0, proc.stdout + proc.stderr
  assert "candidates, 1 checks" in proc.stdout, proc.stdout
  proc = subprocess.run([str(site / "bin" / "surrogate-report"), "--verify", str(verify_json), "--out",
                         str(project / "report"), "--no-plots"], cwd=project, env=env, capture_output=True, text=True,
                        timeout=300)
  assert proc.returncode == 0, proc.stdout + proc.stderr
  assert "Sigmoid" in (project / "report" / "index.md").read_text()
