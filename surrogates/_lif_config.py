"""The choices a leaky integrate-and-fire layer makes, each a named setting.

One time step of the reference LIF (``surrogates.lif``), in the order the settings apply::

    i_t   = synapse(i_{t-1}, x_t)                      # SYNAPSE (NONE: i_t = x_t)
    v'    = reset_before_leak(v_{t-1}, s_{t-1})        # RESET_WHEN == NEXT_BEFORE_LEAK
    v''   = leak(v', β) + gain · i_t + bias            # LEAK, BETA_MAP, GAIN
    v''   = reset_after_leak(v'', s_{t-1})             # RESET_WHEN == NEXT_AFTER_LEAK
    u_t   = argument(v'' or v_{t-1}, θ, v_reset)       # FIRE_FROM, SURROGATE_ARG
    s_t   = g_s · forward(u_t)                         # SPIKE_FORWARD; backward: the surrogate's g
    v_t   = reset_now(v'', s_t)                        # RESET_WHEN == IMMEDIATE
    out_t = v'' (PRE_RESET) or v_t (POST_RESET)        # MEMBRANE_OUT

Every published layer's defaults are one point of this grid; each option the layer has may be
another. Parameters (β's raw value in the library's own parametrisation, θ, v_reset, v_leak, gain,
bias, g_s, the synapse's raw decay) are data: ``LIFParams``; the settings here are static.
"""

from __future__ import annotations

import dataclasses
import enum


class Synapse(enum.Enum):
  """How the input reaches the membrane."""
  NONE = "none"                  # i_t = x_t
  ADD_THEN_DECAY = "add_then_decay"  # i += x; use i; i *= α  (norse, rockpool)
  DECAY_SUM = "decay_sum"        # i = α(i + x); use i  (sinabs with tau_syn)
  LAGGED = "lagged"              # use i_{t-1}; then i = α i + (1 − α) x  (snnax, jaxsnn)


class Leak(enum.Enum):
  """The membrane's decay."""
  MULTIPLY = "multiply"          # v = β v + gain·i + bias
  TOWARD_RESET = "toward_reset"  # v = v + (v_reset − v)(1 − β) + gain·i + bias  (spikingjelly)
  TOWARD_LEAK = "toward_leak"    # v = v + (v_leak − v)(1 − β) + gain·i + bias  (norse, brainpy)


class BetaMap(enum.Enum):
  """β from the parameter the library stores (its raw value, the one it learns)."""
  IDENTITY = "identity"
  CLAMP_0_1 = "clamp_0_1"        # snntorch, spyx
  CLAMP_HALF_1 = "clamp_half_1"  # snnax
  ONE_MINUS_INV_TAU = "one_minus_inv_tau"  # 1 − 1/τ  (spikingjelly)
  SIGMOID = "sigmoid"            # 1 − σ(w) is the leak share: β = 1 − σ(w)  (spikingjelly PLIF, 1/τ = σ(w))
  ONE_MINUS_DT_OVER_TAU = "one_minus_dt_over_tau"  # 1 − dt·τ⁻¹ with the raw value τ⁻¹  (norse)
  EXP_MINUS_INV_TAU = "exp_minus_inv_tau"  # exp(−1/τ), τ in steps  (sinabs)
  EXP_MINUS_DT_OVER_TAU = "exp_minus_dt_over_tau"  # exp(−dt/τ)  (rockpool, brainpy)


class Gain(enum.Enum):
  """The factor on the synaptic input."""
  ONE = "one"
  PARAM = "param"                # the `gain` parameter (R, 1/τ, dt/τ given explicitly)
  ONE_MINUS_BETA = "one_minus_beta"  # 1 − β  (sinabs norm_input, spikingjelly decay_input)
  PARAM_ONE_MINUS_BETA = "param_one_minus_beta"  # gain·(1 − β): R(1 − β)  (brainpy exponential Euler)


class FireFrom(enum.Enum):
  """Which membrane the spike is computed from."""
  CURRENT = "current"            # after this step's integration
  PREVIOUS = "previous"          # v_{t−1} (spyx)


class SurrogateArg(enum.Enum):
  """What the spike function is applied to."""
  V_MINUS_THETA = "v_minus_theta"                  # v − θ
  V_MINUS_THETA_OVER_THETA = "v_minus_theta_over_theta"  # (v − θ)/θ  (sinabs)
  V_OVER_THETA = "v_over_theta"                    # v/θ, with the window's own forward (rockpool)
  V_MINUS_THETA_OVER_RANGE = "v_minus_theta_over_range"  # (v − θ)/(θ − v_reset)  (brainpy.state)


class SpikeForward(enum.Enum):
  """The forward value of the spike, before the graded scale g_s."""
  GE = "ge"                      # H(u) with H(0) = 1
  GT = "gt"                      # H(u) with H(0) = 0
  HALF = "half"                  # H(0) = 1/2  (jaxsnn)
  MULTI_GE = "multi_ge"          # ⌊v/θ⌋ where v ≥ θ, else 0  (rockpool)
  MULTI_POSITIVE = "multi_positive"  # ⌊v/θ⌋ where v > 0, else 0  (sinabs MultiSpike)


class Reset(enum.Enum):
  """What a spike does to the membrane."""
  SUBTRACT_THETA = "subtract_theta"            # v − s·θ
  SUBTRACT_RANGE = "subtract_range"            # v − s·(θ − v_reset)
  SUBTRACT_ONE = "subtract_one"                # v − s
  SUBTRACT_BETA_THETA = "subtract_beta_theta"  # v − s·β·θ
  TO_VALUE = "to_value"                        # (1 − s) v + s·v_reset
  TO_ZERO = "to_zero"                          # v − s·v
  NONE = "none"


class ResetWhen(enum.Enum):
  """When the spike's reset is applied."""
  IMMEDIATE = "immediate"                # in the step that fired
  NEXT_BEFORE_LEAK = "next_before_leak"  # at the next step, before its leak
  NEXT_AFTER_LEAK = "next_after_leak"    # at the next step, after its leak and input


class ResetGrad(enum.Enum):
  """Whether the reset carries the surrogate gradient."""
  ATTACHED = "attached"
  DETACHED = "detached"                  # the spike in the reset term is stop_gradient
  # forward a reset to v_reset, gradient 1 + surrogate term (brainpy.state 'hard')
  HARD_IDENTITY = "hard_identity"
  OUTPUT_DETACHED = "output_detached"    # the returned spike itself is stop_gradient (brainpy.dyn detach_spk)


class MembraneOut(enum.Enum):
  """Which membrane the layer returns at each step."""
  PRE_RESET = "pre_reset"
  POST_RESET = "post_reset"


class ThetaGrad(enum.Enum):
  """How θ receives gradient through the spike."""
  AUTODIFF = "autodiff"          # through the surrogate argument, as written
  NONE = "none"                  # the spike passes no gradient to θ (sinabs)


@dataclasses.dataclass(frozen=True)
class LIFConfig:
  """A layer's choices. Every field is a named setting; the defaults are one common point."""
  synapse: Synapse = Synapse.NONE
  leak: Leak = Leak.MULTIPLY
  beta_map: BetaMap = BetaMap.IDENTITY
  gain: Gain = Gain.ONE
  fire_from: FireFrom = FireFrom.CURRENT
  surrogate_arg: SurrogateArg = SurrogateArg.V_MINUS_THETA
  spike_forward: SpikeForward = SpikeForward.GE
  reset: Reset = Reset.SUBTRACT_THETA
  reset_when: ResetWhen = ResetWhen.IMMEDIATE
  reset_grad: ResetGrad = ResetGrad.ATTACHED
  membrane_out: MembraneOut = MembraneOut.POST_RESET
  theta_grad: ThetaGrad = ThetaGrad.AUTODIFF

  def settings(self) -> dict[str, str]:
    """Every field's setting by name, as its enum value (what the JSON and the reports carry)."""
    return {f.name: getattr(self, f.name).value for f in dataclasses.fields(self)}

  def differs(self, other: LIFConfig) -> dict[str, tuple[str, str]]:
    """The fields whose settings differ: name -> (this one's, the other's)."""
    return {f.name: (getattr(self, f.name).value, getattr(other, f.name).value)
            for f in dataclasses.fields(self) if getattr(self, f.name) != getattr(other, f.name)}


#: The parameters a layer may have, in the reference's names: β's raw value (its library's
#: parametrisation, mapped by ``BetaMap``), θ, v_reset, v_leak, gain, bias, the graded spike scale g_s,
#: the synapse's raw decay (mapped like β), and dt for the maps that use it.
PARAMETERS = ("beta", "theta", "v_reset", "v_leak", "gain", "bias", "g_s", "alpha_syn", "dt")
