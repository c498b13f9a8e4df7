# ruff: noqa
import torch

__all__ = ["LIFTorch"]


class StepPWL(torch.autograd.Function):
  @staticmethod
  def forward(ctx, x, threshold=torch.tensor(1.0), window=torch.tensor(0.5), max_spikes_per_dt=torch.tensor(2.0**16)):
    ctx.save_for_backward(x, threshold)
    ctx.window = window
    nr_spikes = ((x >= threshold) * torch.floor(x / threshold)).float()
    clamp_bool = (nr_spikes > max_spikes_per_dt).float()
    nr_spikes -= (nr_spikes - max_spikes_per_dt.float()) * clamp_bool
    return nr_spikes

  @staticmethod
  def backward(ctx, grad_output):
    x, threshold = ctx.saved_tensors
    mask = x >= (threshold - ctx.window)
    return grad_output / threshold * mask, -x * grad_output / (threshold**2) * mask, None, None


class PeriodicExponential(torch.autograd.Function):
  @staticmethod
  def forward(ctx, data, threshold=1.0, window=0.5, max_spikes_per_dt=torch.tensor(2.0**16)):
    ctx.save_for_backward(data.clone())
    ctx.threshold, ctx.window, ctx.max_spikes_per_dt = threshold, window, max_spikes_per_dt
    nr_spikes = ((data >= threshold) * torch.floor(data / threshold)).float()
    clamp_bool = (nr_spikes > max_spikes_per_dt).float()
    nr_spikes -= (nr_spikes - max_spikes_per_dt.float()) * clamp_bool
    return nr_spikes

  @staticmethod
  def backward(ctx, grad_output):
    (v,) = ctx.saved_tensors
    shifted = v - ctx.threshold / 2
    k = torch.clamp(torch.div(shifted, ctx.threshold, rounding_mode="floor"), max=ctx.max_spikes_per_dt - 1)
    new = (shifted - k * ctx.threshold) * (v >= ctx.threshold) + shifted * (v < ctx.threshold)
    pdf = torch.exp(-torch.abs(new - ctx.threshold / 2) / ctx.window) / ctx.threshold
    return grad_output * pdf, grad_output * -pdf * v / ctx.threshold, None, None


def sigmoid(x, threshold):
  return torch.tanh(x + 1 - threshold) / 2 + 0.5


class LIFTorch(torch.nn.Module):
  """LIFTorch.forward of 3.1.0 (lif_torch.py L685-728) for a feed-forward layer without noise, as the layer
  adapter calls it: the decays and threshold as float32 nn.Parameters, the states as buffers, evolve(x, record)."""

  def __init__(self, shape, leak_mode="taus", tau_mem=None, tau_syn=None, alpha=None, beta=None, bias=None,
               threshold=None, spike_generation_fn=StepPWL, learning_window=0.5,
               max_spikes_per_dt=torch.tensor(2.0**16), dt=1e-3):
    super().__init__()
    f = lambda v: torch.nn.Parameter(torch.as_tensor(v, dtype=torch.float))
    n = shape[-1]
    self.leak_mode, self.dt = leak_mode, dt
    if leak_mode == "taus":
      self.tau_mem, self.tau_syn = f(tau_mem), f(tau_syn)
    else:
      self.alpha, self.beta = f(alpha), f(beta)
    self.bias, self.threshold = f(bias), f(threshold)
    self.learning_window, self.max_spikes_per_dt = torch.tensor(float(learning_window)), max_spikes_per_dt
    self.spike_generation_fn = spike_generation_fn.apply
    self.register_buffer("vmem", torch.zeros(n))
    self.register_buffer("isyn", torch.zeros(n, 1))

  def evolve(self, input_data, record=False):
    if self.leak_mode == "taus":
      alpha, beta = torch.exp(-self.dt / self.tau_mem), torch.exp(-self.dt / self.tau_syn)
    else:
      alpha, beta = self.alpha, self.beta
    n_batches, n_timesteps, n = input_data.shape
    vmem = torch.ones((n_batches, n)) * self.vmem
    isyn = torch.ones((n_batches, n, 1)) * self.isyn
    input_data = input_data.reshape(n_batches, n_timesteps, n, 1)
    rec_v = torch.zeros(n_batches, n_timesteps, n)
    out = torch.zeros(n_batches, n_timesteps, n)
    for t in range(n_timesteps):
      isyn = isyn + input_data[:, t]
      vmem = vmem * alpha
      isyn = isyn * beta
      vmem = vmem + isyn.sum(2) + self.bias
      spikes = self.spike_generation_fn(vmem, self.threshold, self.learning_window, self.max_spikes_per_dt)
      vmem = vmem - spikes * self.threshold
      rec_v[:, t] = vmem
      out[:, t] = spikes
    return out, {}, ({"vmem": rec_v} if record else {})
