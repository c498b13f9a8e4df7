"""Sessions: tests, lint, verify, bench, report.

Every session also runs inside an existing environment without installing anything:
``nox --no-venv -s NAME`` (the GPU machine is offline with JAX preinstalled).
"""

from __future__ import annotations

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


@nox.session
def tests(session: nox.Session) -> None:
  """The harness's own tests, including the self-tests and a verification of the reference."""
  install(session, "test")
  session.run("pytest", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
  """ruff over the project."""
  install(session, "lint", project=False)
  session.run("ruff", "check", ".")


@nox.session
def demo(session: nox.Session) -> None:
  """Prints the registry: each surrogate's g(0), mass and kinks."""
  install(session)
  session.run("python", "-m", "surrogates", *session.posargs)
