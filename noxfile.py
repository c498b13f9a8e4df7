"""Sessions: tests, lint, docs, verify, bench, gpucheck, report, findings, install_check, demo.

Every session also runs inside an existing environment without installing anything:
``nox --no-venv -s NAME`` (the GPU machine is offline with JAX preinstalled).
"""

from __future__ import annotations

import json
import os
import pathlib
import shlex
import shutil
import time

import nox

nox.options.default_venv_backend = "uv|virtualenv"
nox.options.sessions = ["tests", "lint"]

PYPROJECT = nox.project.load_toml("pyproject.toml")


def install(session: nox.Session, *groups: str, project: bool = True) -> None:
  """Installs the project and the given dependency groups, unless running without a venv."""
  if session.venv_backend == "none":
    return
  deps = [d for g in groups for d in nox.project.dependency_groups(PYPROJECT, g)]
  if project:
    session.install("-e", ".", *deps)
  elif deps:
    session.install(*deps)


def _ensure_chromium(session: nox.Session) -> None:
  """The report test opens the page in headless Chromium: install Debian's package where we can."""
  if session.venv_backend == "none" or shutil.which("chromium") or not shutil.which("apt-get"):
    return
  if os.geteuid() != 0:
    session.warn("chromium is not installed and this is not root: the browser test will be skipped")
    return
  session.run("apt-get", "update", "-qq", external=True)
  session.run("apt-get", "install", "-y", "-qq", "--no-install-recommends", "chromium", external=True)


@nox.session
def tests(session: nox.Session) -> None:
  """The harness's own tests, including the self-tests and a verification of the reference."""
  install(session, "test", "docs", "start")  # the docs group: the site is built by tests/test_docs.py
  if session.venv_backend != "none":
    for library in ("snntorch", "spikingjelly"):  # torch libraries: their adapter tests run too
      _install_target(session, library)
  _ensure_chromium(session)
  # two test processes, each file on one of them (so the session's one reference run is made once); the
  # slowest tests are listed at the end, and the suite's own time is the last line (a budget to watch, not a test)
  start = time.monotonic()
  session.run("pytest", *(session.posargs or ["-n", "2", "--dist", "loadfile", "--durations=25"]))
  session.log(f"pytest took {time.monotonic() - start:.0f} s ({os.cpu_count()} cores; budget: 180 s on 2 cores "
              "with a warm compilation cache)")


@nox.session
def docs(session: nox.Session) -> None:
  """The documentation site (mkdocs-material, the API reference by mkdocstrings) in strict mode: a broken link or
  reference fails. Builds into ``site/`` offline; ``-- serve`` previews it instead."""
  install(session, "docs", project=False)  # mkdocstrings reads the sources, it imports nothing
  if session.posargs[:1] == ["serve"]:
    session.run("mkdocs", "serve", *session.posargs[1:])
  else:
    session.run("mkdocs", "build", "--strict", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
  """ruff over the project."""
  install(session, "lint", project=False)
  session.run("ruff", "check", ".")


def _install_target(session: nox.Session, spec: str) -> str | None:
  """Installs a built-in target ``NAME[==VERSION]`` (see builtin.json); returns the version, or None
  for a ``module:attr`` target. The pinned requirements go first (torch==2.13.0, a CPU build), so
  the library cannot pull another."""
  name, _, version = spec.partition("==")
  builtin = json.loads(pathlib.Path("verification/targets/builtin.json").read_text())
  if name not in builtin:
    return None
  entry = builtin[name]
  if entry.get("not_checkable"):
    session.skip(f"{name} is not checkable here: {entry['not_checkable']}")
  version = version or entry["default_version"]
  if entry.get("extra_requirements"):
    session.install(*entry["extra_requirements"])
  session.install(*entry.get("pip_args", []), f"{entry['package']}=={version}")
  return version


IMPORTS_JSON = "verification/targets/imports.json"


@nox.session
@nox.parametrize("library", [name for name, entry in json.loads(
    pathlib.Path("verification/targets/builtin.json").read_text()).items() if not entry.get("not_checkable")])
def install_check(session: nox.Session, library: str) -> None:
  """Installs one built-in library into a fresh environment exactly as ``verify`` does, builds its candidates
  and fails on an import error or an unbuilt candidate, or on a loaded module that ``imports.json`` does not
  record (``-- --record`` rewrites the library's entry there from this install)."""
  if session.venv_backend == "none":
    session.error("install_check installs the libraries: run it without --no-venv")
  install(session)
  _install_target(session, library)
  probe = pathlib.Path(session.create_tmp()) / "imports.json"
  # builds the candidates and lists the modules loaded (verification/targets/install_probe.py)
  session.run("python", "-m", "verification.targets.install_probe", library, str(probe))
  found = json.loads(probe.read_text())
  path = pathlib.Path(IMPORTS_JSON)
  recorded = json.loads(path.read_text()) if path.exists() else {}
  if "--record" in session.posargs:
    recorded[library] = found
    path.write_text(json.dumps(dict(sorted(recorded.items())), indent=1) + "\n")
    session.log(f"recorded {len(found['modules'])} modules of {library} {found['version']} in {IMPORTS_JSON}")
    return
  known = recorded.get(library, {})
  new = sorted(set(found["modules"]) - set(known.get("modules", {})))
  if known.get("version") != found["version"] or new:
    session.error(f"{IMPORTS_JSON} is stale for {library} (recorded {known.get('version')}, installed "
                  f"{found['version']}; modules not recorded: {', '.join(new) or 'none'}): rerun with -- --record")


#: Where ``nox -s verify`` writes its JSON unless ``--json`` is given; ``nox -s report`` reads it first.
VERIFY_JSON = "results/out/verify.json"


@nox.session
def verify(session: nox.Session) -> None:
  """Checks the reference (default) or ``-- --target NAME|MODULE:ATTR``; see ``-- --help``. Writes
  ``results/out/verify.json`` unless ``--json`` is given, so ``nox -s report`` shows this run."""
  install(session, "start")
  if "--target" in session.posargs and session.venv_backend != "none":
    _install_target(session, session.posargs[session.posargs.index("--target") + 1])
  args = list(session.posargs)
  if "--json" not in args and not any(a.startswith("--json=") for a in args) and not {"-h", "--help"} & set(args):
    pathlib.Path(VERIFY_JSON).parent.mkdir(parents=True, exist_ok=True)
    args += ["--json", VERIFY_JSON]
  session.run("python", "-m", "verification", *args)


def _generated_by(path: str, command: str) -> None:
  """Heads a verification JSON with ``generated_by``, the command that regenerates it (its readers ignore the key;
  written as ``verification.output.write_json`` writes), or a JUnit XML with a comment saying so."""
  file = pathlib.Path(path)
  if file.suffix == ".xml":
    declaration, _, rest = file.read_text().partition("\n")
    file.write_text(f"{declaration}\n<!-- Generated by `{command}`; do not edit. -->\n{rest}")
    return
  doc = json.loads(file.read_text())
  doc = {"generated_by": command, **{k: v for k, v in doc.items() if k != "generated_by"}}
  file.write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n")


LIBRARIES = list(json.loads(pathlib.Path("verification/targets/builtin.json").read_text()))


@nox.session
@nox.parametrize("library", LIBRARIES)
def findings(session: nox.Session, library: str) -> None:
  """Checks one published library (each in its own environment) and rewrites the README's findings. With
  ``--no-venv`` the library must be installed already (its installed version is checked); options after ``--`` go
  to the verification (``-- --only Sigmoid --checks forward`` for a quick look)."""
  install(session)
  if session.venv_backend == "none":
    entry = json.loads(pathlib.Path("verification/targets/builtin.json").read_text())[library]
    if entry.get("not_checkable"):
      session.skip(f"{library} is not checkable here: {entry['not_checkable']}")
    version = session.run("python", "-c", "import importlib.metadata as m, sys; print(m.version(sys.argv[1]))",
                          entry["package"], silent=True).strip()
  else:
    version = _install_target(session, library)
  pathlib.Path("results/peers").mkdir(parents=True, exist_ok=True)
  out = f"results/peers/{library}-{version}.json"
  session.run("python", "-m", "verification", "--target", library, "--json", out, "--quiet", *session.posargs,
              success_codes=[0, 1])
  _generated_by(out, f"nox -s \"findings(library='{library}')\"")
  session.run("python", "-m", "reports.findings", "--out", "results/findings", "--shapes", "results/shapes",
              "--readme", "README.md")
  # every reproducer of this library, against the real library: each must still show its defect (exit 1)
  for script in sorted(pathlib.Path("results/findings/repro").glob(f"{library}_*.py")):
    session.run("python", str(script), success_codes=[1])


@nox.session
def bench(session: nox.Session) -> None:
  """Throughput benchmarks, the default grid in a few minutes: ``-- --device cpu|gpu|tpu``, ``--smoke`` (seconds),
  ``--full`` (every op, dtype and size), ``--peers``, ``--layer``, ``--compare JSON``. Offline on a machine with
  JAX (and CUDA) preinstalled: ``nox --no-venv -s bench -- --device gpu``."""
  install(session, "bench")
  if "--peers" in session.posargs and session.venv_backend != "none":
    layer = "--layer" in session.posargs
    for name in ("braintools", "spyx", *(("snntorch",) if layer else ())):
      _install_target(session, name)
    if layer:
      session.install("norse==1.1.0")  # after torch (an sdist that builds against it)
  session.run("pytest", "benchmarks", "-p", "no:cacheprovider", *session.posargs)


@nox.session
def gpucheck(session: nox.Session) -> None:
  """The accelerator self-check in one command, offline where JAX with CUDA is preinstalled:
  ``nox --no-venv -s gpucheck`` (``-- tpu`` or ``-- cpu`` for another device; ``--quick`` checks the wiring in
  about a minute: Sigmoid's forward and autodiff checks in float32, short timings of small sizes). Writes
  ``results/<device>/``: the reference verified on the device (``verify.json``, ``verify.xml``; every check must
  pass), a benchmark smoke with its A/A control (``bench-<device>.*``) and the layer benchmark with the peers that
  are installed (``layer-<device>.*``; a peer that cannot use the device is listed as not run)."""
  install(session, "test")
  quick = "--quick" in session.posargs
  args = [a for a in session.posargs if a != "--quick"]
  device = args[0] if args else "gpu"
  out = f"results/{device}"
  pathlib.Path(out).mkdir(parents=True, exist_ok=True)
  small = ("--only", "Sigmoid", "--checks", "forward,autodiff", "--dtypes", "float32", "--jobs", "1")
  session.run("python", "-m", "verification", "--device", device, "--quiet", "--json", f"{out}/verify.json",
              "--junit", f"{out}/verify.xml", *(small if quick else ()))
  for name in ("verify.json", "verify.xml"):
    _generated_by(f"{out}/{name}", shlex.join(["nox", "--no-venv", "-s", "gpucheck", *(("--", *session.posargs)
                                                                                      if session.posargs else ())]))
  bench = ["pytest", "benchmarks", "-p", "no:cacheprovider", "--device", device, "--bench-out", out,
           *(("--max-time", "0.02") if quick else ())]
  session.run(*bench, "--smoke", *(("--sizes", "16") if quick else ()))
  session.run(*bench, "--layer", "--peers",
              *(("--layer-neurons", "16", "--layer-steps", "5", "--layer-batch", "2") if quick else ()))


@nox.session
def report(session: nox.Session) -> None:
  """HTML and Markdown reports from the JSON of verify and bench: ``-- --only Sigmoid``, ``--no-plots``."""
  install(session, "report")
  session.run("python", "-m", "reports", *session.posargs)


@nox.session
def demo(session: nox.Session) -> None:
  """Prints the registry: each surrogate's g(0), mass and kinks."""
  install(session)
  session.run("python", "-m", "surrogates", *session.posargs)
