"""pytest plugin: the harness's checks as test items, one per (candidate, check), named ``label[check]``.

Installed with the package (entry point ``pytest11``); inactive unless a target is given::

  pytest --surrogate-target mylib.surrogates:CANDIDATES            # command line
  [tool.pytest.ini_options] surrogate_target = "mylib.surrogates:CANDIDATES"     # or ini
  pytestmark = pytest.mark.surrogate_target("mylib.surrogates:CANDIDATES")      # or in a test module

A target is what ``python -m verification --target`` takes (``module:ATTR``, a built-in library
name, ``reference``). ``--surrogate-checks``, ``--surrogate-dtypes``, ``--surrogate-require``,
``--surrogate-timeout`` and ``--surrogate-shard K/N`` mirror the CLI (ini: ``surrogate_checks``,
``surrogate_dtypes``, ``surrogate_require``; the marker takes ``checks=``, ``dtypes=``, ``require=``).

Every item carries the marker ``surrogate``: ``-m surrogate`` runs only the harness's items (the
option form also collects the project's own tests, as any pytest run does).

A failing item's text is the diagnosis; ``skip`` and ``unsupported`` results are pytest skips with
the reason (``unsupported`` fails where its capability is required); ``convention`` passes.

Runs: checks run in the harness's worker processes, at the first selected item, and are cached
for the other items; only the checks whose items are selected run (``-k forward`` runs only the
forward check). Without xdist, the first item runs every selected candidate of its target in one
run (the harness's own ``jobs``: one worker process per core, never more than the candidates). With pytest-xdist
(``-n N``), every item of a candidate carries ``xdist_group(label)`` and ``-n`` without an explicit
``--dist`` uses ``--dist loadgroup``, so each xdist worker runs exactly the candidates whose items
it got, one at a time.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

import pytest

_DISTRIBUTED = ("--dist", "-d")


@dataclasses.dataclass(frozen=True)
class Settings:
  """What to run for one target: the CLI's options (``None``: the harness's default)."""

  checks: tuple[str, ...] | None = None
  dtypes: tuple[str, ...] | None = None
  require: tuple[str, ...] = ()
  timeout: float | None = None
  shard: tuple[int, int] | None = None
  device: str | None = None


def _split(value: str | Iterable[str] | None) -> tuple[str, ...] | None:
  if value is None:
    return None
  items = value.split(",") if isinstance(value, str) else [part for v in value for part in str(v).split(",")]
  out = tuple(v.strip() for v in items if v.strip())
  return out or None


def pytest_addoption(parser: pytest.Parser) -> None:
  group = parser.getgroup("surrogate", "surrogate-gradient verification (surrogate-harness)")
  group.addoption("--surrogate-target", action="append", default=[], metavar="TARGET",
                  help="check these candidates: MODULE:ATTR, a built-in library name or 'reference' (repeatable)")
  group.addoption("--surrogate-checks", metavar="LIST", help="comma-separated subset of the checks (default: all)")
  group.addoption("--surrogate-dtypes", metavar="LIST", help="comma-separated float dtypes (default: all four)")
  group.addoption("--surrogate-require", metavar="LIST",
                  help="capabilities (forward, second, vmap, jit) whose absence fails instead of skipping")
  group.addoption("--surrogate-timeout", type=float, metavar="SECONDS", help="time limit per check (default 120)")
  group.addoption("--surrogate-json", metavar="PATH",
                  help="write the verification JSON of the checks run (surrogate-report reads it); an xdist "
                  "worker writes PATH with its id before the suffix (verify.gw0.json)")
  group.addoption("--surrogate-device", choices=("cpu", "gpu", "tpu"),
                  help="where the candidates run (default: the device JAX finds)")
  group.addoption("--surrogate-shard", metavar="K/N",
                  help="only shard K of N of the candidates (those whose label's CRC-32 modulo N is K - 1)")
  parser.addini("surrogate_target", "targets to check (MODULE:ATTR, one per line)", type="linelist", default=[])
  parser.addini("surrogate_checks", "comma-separated subset of the checks", default="")
  parser.addini("surrogate_dtypes", "comma-separated float dtypes", default="")
  parser.addini("surrogate_require", "comma-separated required capabilities", default="")
  parser.addini("surrogate_device", "cpu, gpu or tpu (default: the device JAX finds)", default="")


def pytest_configure(config: pytest.Config) -> None:
  config.addinivalue_line("markers", "surrogate: an item of the surrogate-harness plugin (-m surrogate: only these)")
  config.addinivalue_line(
      "markers", "surrogate_target(target, checks=None, dtypes=None, require=()): collect the harness's checks "
      "of TARGET (MODULE:ATTR) in this module, one item per (candidate, check)")
  explicit = any(a == flag or a.startswith(flag + "=") for a in config.invocation_params.args for flag in _DISTRIBUTED)
  if getattr(config.option, "dist", "no") == "load" and not explicit:
    config.option.dist = "loadgroup"  # keep a candidate's items on one xdist worker (it runs them all at once)
  if getattr(config, "workerinput", {}).get("surrogate_loadgroup"):
    config.option.loadgroup = True  # an xdist worker: tag the items with their group, as --dist loadgroup does


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
  """pytest-xdist, on the controller: tell each worker that the run was switched to ``loadgroup``."""
  if node.config.option.dist == "loadgroup":
    node.workerinput["surrogate_loadgroup"] = True


def _settings(config: pytest.Config, **marker: Any) -> Settings:
  """Marker keywords, then command-line options, then ini values, then the harness's defaults."""

  def pick(name: str) -> tuple[str, ...] | None:
    if marker.get(name) is not None:
      return _split(marker[name])
    return _split(config.getoption(f"surrogate_{name}")) or _split(config.getini(f"surrogate_{name}"))

  shard = None
  if config.getoption("surrogate_shard"):
    from verification.api import _shard

    try:
      shard = _shard(config.getoption("surrogate_shard"))
    except ValueError as exc:
      raise pytest.UsageError(f"--surrogate-shard: {exc}") from None
  return Settings(checks=pick("checks"), dtypes=pick("dtypes"), require=pick("require") or (),
                  timeout=config.getoption("surrogate_timeout"), shard=shard,
                  device=(marker.get("device") or config.getoption("surrogate_device")
                          or config.getini("surrogate_device") or None))


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Any:
  """Adds a :class:`Target` collector to the session (option/ini) or to a module (marker)."""
  report = yield
  if not report.passed:
    return report
  config = collector.config
  if isinstance(collector, pytest.Session):
    specs = [*config.getoption("surrogate_target"), *config.getini("surrogate_target")]
    report.result.extend(Target.from_parent(collector, name=s, nodeid=s, spec=s, settings=_settings(config))
                         for s in dict.fromkeys(specs))
  elif isinstance(collector, pytest.Module):
    for mark in collector.iter_markers("surrogate_target"):
      if len(mark.args) != 1:
        raise pytest.UsageError(f"{collector.nodeid}: surrogate_target takes one target, got {mark.args!r}")
      report.result.append(Target.from_parent(collector, name=mark.args[0], spec=mark.args[0],
                                              settings=_settings(config, **mark.kwargs)))
  return report


def _load(spec: str) -> Any:
  """The target record of a spec, loaded as the CLI loads it: in a worker process, so this pytest
  process never imports the code it judges (items that could not be built included)."""
  from verification.engine import runner

  return runner.load(spec, runner.Options())


class Target(pytest.Collector):
  """The candidates of one target; its children are :class:`Check` items, candidate by candidate."""

  def __init__(self, *, spec: str, settings: Settings, **kwargs: Any) -> None:
    super().__init__(**kwargs)
    self.spec, self.settings = spec, settings
    self.library: Any = None

  def collect(self) -> Iterable[pytest.Item]:
    from verification.checks import checks_for
    from verification.engine.runner import in_shard

    known = _all_checks()
    checks = self.settings.checks or known
    unknown = [c for c in checks if c not in known]
    if unknown:
      raise self.CollectError(f"unknown surrogate checks {unknown}; known: {', '.join(known)}")
    try:
      target = _load(self.spec)
    except Exception as exc:
      from verification.targets import TargetError

      why = str(exc) if isinstance(exc, TargetError) else f"{type(exc).__name__}: {exc}"
      raise self.CollectError(f"surrogate target {self.spec!r} could not be loaded: {why}") from exc
    self.library = target.library
    for candidate in target.candidates:
      if not in_shard(candidate.label, self.settings.shard):
        continue
      kind = (getattr(candidate, "fields", None) or {}).get("kind") or getattr(candidate, "kind", None) or "spike"
      for check in checks_for(kind, tuple(checks)):
        item = Check.from_parent(self, name=f"{candidate.label}[{check}]", candidate=candidate, check=check)
        item.add_marker(pytest.mark.xdist_group(candidate.label))
        item.add_marker(pytest.mark.surrogate)
        yield item

  def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException]) -> str:
    if isinstance(excinfo.value, self.CollectError):
      return str(excinfo.value.args[0])
    return super().repr_failure(excinfo)


class CheckFailed(Exception):
  """A failing or erroring (candidate, check): the message is the diagnosis."""


#: Reports of the candidates already run in this process: (target node id, label) -> Report.
_RUNS: dict[tuple[str, str], Any] = {}
#: Every run made in this process, with its target (for --surrogate-json).
_DONE: list[tuple[Target, Any]] = []


class Check(pytest.Item):
  """One (candidate, check). Its candidate is run (all its selected checks) at the first of its items."""

  def __init__(self, *, candidate: Any, check: str, **kwargs: Any) -> None:
    from verification.core.candidate import Unbuilt

    super().__init__(**kwargs)
    self.candidate, self.check = candidate, check
    #: The item of the target could not be built into a candidate (the item fails with why).
    self.unbuilt = isinstance(candidate, Unbuilt)

  @property
  def target(self) -> Target:
    assert isinstance(self.parent, Target)
    return self.parent

  def _batch(self) -> list[Check]:
    """The items run together with this one: its candidate's selected items under pytest-xdist (the
    worker got that candidate's group), else every selected item of its target not run yet (one run,
    the harness's own worker processes in parallel)."""
    key, xdist_worker = self.parent.nodeid, hasattr(self.config, "workerinput")
    return [i for i in self.session.items
            if isinstance(i, Check) and i.parent.nodeid == key and not i.unbuilt
            and (key, i.candidate.label) not in _RUNS
            and (not xdist_worker or i.candidate.label == self.candidate.label)] or [self]

  def _report(self) -> Any:
    key = (self.parent.nodeid, self.candidate.label)
    if key not in _RUNS:
      from verification import api

      batch = self._batch()
      labels = list(dict.fromkeys(i.candidate.label for i in batch))
      selected = {i.check for i in batch}
      checks = [c for c in self.target.settings.checks or _all_checks() if c in selected]
      s = self.target.settings
      # the workers load the target themselves and check the candidates with these labels
      report = api.check(self.target.spec, checks=checks, dtypes=s.dtypes, require=s.require, timeout=s.timeout,
                         labels=labels, device=s.device)
      _RUNS.update({(self.parent.nodeid, label): report for label in labels})
      _DONE.append((self.target, report))
    return _RUNS[key]

  def runtest(self) -> None:
    from verification.results import Status

    if self.unbuilt:
      raise CheckFailed(f"{self.candidate.label} [{self.check}] error: {self.candidate.message}")
    result = self._report().result(self.candidate.label, self.check)
    text = result.diagnosis.text()
    self.user_properties.append(("status", result.status.value))
    if result.status in (Status.SKIP, Status.UNSUPPORTED):
      pytest.skip(f"{result.status.value}: {text}".replace("\n", "; "))
    if result.failing:
      raise CheckFailed(f"{self.candidate.label} [{self.check}] {result.status.value}: {text}")

  def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
    if isinstance(excinfo.value, CheckFailed):
      return str(excinfo.value)
    return super().repr_failure(excinfo)

  def reportinfo(self) -> tuple[Any, int | None, str]:
    return self.path, None, f"{self.target.spec}::{self.name}"


def _all_checks() -> tuple[str, ...]:
  from verification.engine.options import all_checks

  return all_checks()


def pytest_sessionfinish(session: pytest.Session) -> None:
  """``--surrogate-json PATH``: the runs of this process as one verification JSON document."""
  path = session.config.getoption("surrogate_json", None)
  if not path or not _DONE:
    return
  import os

  from verification import output, results

  worker = getattr(session.config, "workerinput", {}).get("workerid")
  if worker:
    root, ext = os.path.splitext(path)
    path = f"{root}.{worker}{ext or '.json'}"
  runs = [report.run for _, report in _DONE]
  targets = list(dict.fromkeys(t.spec for t, _ in _DONE))
  libraries = [t.library for t, _ in _DONE if t.library]
  settings = _DONE[0][0].settings
  run = results.Run(
      target=",".join(targets), results=tuple(r for run in runs for r in run.results),
      checks=tuple(results.ordered_checks([c for run in runs for c in run.checks], _all_checks())),
      library=libraries[0] if libraries else None, environment=runs[0].environment,
      provenance={**runs[0].provenance, "target": ",".join(targets), "pytest_worker": worker,
                  "shard": list(settings.shard) if settings.shard else None},
      curves={label: c for run in runs for label, c in run.curves.items()})
  output.write_json(path, run)
