# ruff: noqa
import jax
import jax.numpy as np

__all__ = ["LIFJax"]


def sigmoid(x, threshold):
  return np.tanh(x + 1 - threshold) / 2 + 0.5


@jax.custom_jvp
def step_pwl(x, threshold, window=0.5, max_spikes_per_dt=2.0**16):
  spikes = (x >= threshold) * np.floor(x / threshold)
  return np.clip(spikes, 0.0, max_spikes_per_dt)


@step_pwl.defjvp
def step_pwl_jvp(primals, tangents):
  x, threshold, window, max_spikes_per_dt = primals
  x_dot, threshold_dot, window_dot, max_spikes_per_dt_dot = tangents
  return step_pwl(*primals), (x >= (threshold - window)) * (x_dot / threshold - threshold_dot * x / (threshold**2))


class LIFJax:
  pass
