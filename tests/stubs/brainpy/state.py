# ruff: noqa
# brainpy.state.LIF (brainpy 2.8.2 re-exports brainpy_state 0.1.0; brainpy_state/_brainpy/lif.py L249-293) as the
# layer adapter calls it: unitless parameters, one input (sum_current_inputs(x, v) is x, sum_delta_inputs(V) is V).
import braintools
import brainstate
import jax


class LIF:
  def __init__(self, in_size, R=1.0, tau=5.0, V_th=1.0, V_reset=0.0, V_rest=0.0,
               V_initializer=braintools.init.Constant(0.0), spk_fun=braintools.surrogate.ReluGrad(), spk_reset="soft",
               name=None):
    self.varshape = (in_size,)
    self.spk_fun, self.spk_reset = spk_fun, spk_reset
    self.R, self.tau, self.V_th, self.V_rest, self.V_reset = R, tau, V_th, V_rest, V_reset
    self.V_initializer = V_initializer

  def init_state(self, batch_size=None, **kwargs):
    self.V = brainstate.HiddenState(braintools.init.param(self.V_initializer, self.varshape, batch_size))

  def get_spike(self, V=None):
    V = self.V.value if V is None else V
    v_scaled = (V - self.V_th) / (self.V_th - self.V_reset)
    return self.spk_fun(v_scaled)

  def update(self, x=0.0):
    last_v = self.V.value
    last_spk = self.get_spike(last_v)
    V_th = self.V_th if self.spk_reset == "soft" else jax.lax.stop_gradient(last_v)
    V = last_v - (V_th - self.V_reset) * last_spk
    dv = lambda v: (-v + self.V_rest + self.R * x) / self.tau
    V = brainstate.nn.exp_euler_step(dv, V)
    self.V.value = V
    return self.get_spike(V)
