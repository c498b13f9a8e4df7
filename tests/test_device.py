"""Where the workers run (``--device``), their memory guard, and how many there are by default.

CI has no accelerator: a GPU run is exercised by ``nox -s gpucheck`` on a machine with one. Here:
``--device gpu`` on a machine without one is a usage error before any check (exit 2), ``--device
cpu`` records the platform, the resident-memory guard ends a worker where the address-space cap is
off (as on an accelerator, where CUDA reserves far more address space than it uses), and a platform
without float64 gives ``skip`` results naming it.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests._subprocess import environment
from verification.core.candidate import Candidate
from verification.engine import devices, runner
from verification.engine.options import jobs_for
from verification.engine.platform import platform_gaps
from verification.engine.runner import GiB, Options
from verification.results import Status

ALL = ("float16", "bfloat16", "float32", "float64")


def _cli(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
  return subprocess.run([sys.executable, "-m", "verification", *args], capture_output=True, text=True,
                        timeout=timeout, env=environment())


def test_device_gpu_without_a_gpu_is_a_usage_error_naming_it():
  proc = _cli("--only", "Sigmoid", "--checks", "forward", "--dtypes", "float32", "--device", "gpu", "--quiet")
  assert proc.returncode == 2, proc.stdout + proc.stderr
  assert "--device gpu" in proc.stderr and "GPU" in proc.stderr.upper(), proc.stderr
  assert "candidates," not in proc.stdout  # stopped before any check ran


def test_device_cpu_records_the_platform_in_the_json(tmp_path):
  out = tmp_path / "run.json"
  proc = _cli("--only", "Sigmoid", "--checks", "forward", "--dtypes", "float32", "--device", "cpu", "--quiet",
              "--json", str(out))
  assert proc.returncode == 0, proc.stdout + proc.stderr
  run = json.loads(out.read_text())
  assert run["environment"]["platform"] == "cpu"
  assert run["environment"]["dtypes"] == list(ALL)
  assert run["provenance"]["options"]["device"] == "cpu"
  assert "on cpu" in proc.stdout


def test_an_unknown_device_is_a_usage_error():
  with pytest.raises(runner.UsageError, match="device 'gpux'"):
    runner.validate(Options(device="gpux"))


def test_worker_environment_shares_an_accelerator_and_names_the_platforms(monkeypatch):
  monkeypatch.delenv("XLA_PYTHON_CLIENT_PREALLOCATE", raising=False)
  monkeypatch.delenv("XLA_PYTHON_CLIENT_MEM_FRACTION", raising=False)
  env = devices.worker_environment("gpu")
  assert env == {"JAX_PLATFORMS": "cuda,cpu", "XLA_PYTHON_CLIENT_PREALLOCATE": "false"}
  assert "JAX_PLATFORMS" not in devices.worker_environment("")  # the device JAX finds
  monkeypatch.setenv("XLA_PYTHON_CLIENT_MEM_FRACTION", ".2")  # the user's choice is kept
  assert "XLA_PYTHON_CLIENT_PREALLOCATE" not in devices.worker_environment("gpu")


def test_the_address_space_cap_applies_only_to_cpu_only_workers(monkeypatch):
  monkeypatch.delenv("JAX_PLATFORMS", raising=False)
  assert devices.cpu_only("cpu") and not devices.cpu_only("gpu") and not devices.cpu_only("tpu")
  monkeypatch.setattr(devices, "accelerator_plugins", lambda: ["jax-cuda13-plugin"])
  assert not devices.cpu_only("")  # an accelerator may be found: resident memory is the guard
  monkeypatch.setattr(devices, "accelerator_plugins", lambda: [])
  assert devices.cpu_only("")


def test_jobs_default_to_the_cores_and_never_exceed_the_candidates():
  assert jobs_for(Options(), 10_000) == devices.cores()
  assert jobs_for(Options(), 1) == 1
  assert jobs_for(Options(jobs=10_000), 10_000) == devices.cores()


def _touches_4gib(x):
  import numpy as np

  block = np.ones(4 << 30, np.uint8)  # every page written: resident, not only reserved
  return x * 0 + block[:1].sum()


def test_the_resident_memory_guard_ends_a_worker_without_an_address_space_cap(monkeypatch):
  import jax.numpy as jnp

  import surrogates

  ref = surrogates.Sigmoid()
  hog = Candidate(name="Sigmoid", params={}, fn=lambda x: ref(x) + 0 * _touches_4gib(jnp.zeros(())),
                  label="touches 4 GiB")
  monkeypatch.setattr(devices, "cpu_only", lambda device: False)  # as on an accelerator: no address-space cap
  run = runner.run([hog], Options(checks=("forward",), dtypes=("float32",), jobs=1, memory_limit=2 * GiB))
  (result,) = run.results
  assert result.status is Status.ERROR, result
  assert "resident memory" in result.message and "memory limit of 2.0 GiB" in result.message, result.message


@pytest.mark.parametrize(("supported", "dtypes", "kept", "why"), [
    (list(ALL), list(ALL), list(ALL), None),
    (["bfloat16", "float32"], list(ALL), [], "no float64"),  # a TPU: the oracles need float64
    (["float32", "float64"], list(ALL), ["float32", "float64"], None),  # 16-bit types left out
    (["float32", "float64"], ["float16"], [], "none of the selected dtypes"),
])
def test_a_platform_without_a_dtype_skips_with_the_reason(supported, dtypes, kept, why):
  got, reason = platform_gaps(dtypes, supported, "tpu")
  assert got == kept
  assert (reason is None) == (why is None) and (why is None or why in reason)
