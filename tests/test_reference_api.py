"""Forward exactness, dtypes and shapes, parameters, registry and transforms of the reference."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import surrogates
from surrogates import NON_NEGATIVE, POSITIVE, POSITIVE_INT, REAL

DEFAULTS = [pytest.param(cls(), id=name) for name, cls in surrogates.REGISTRY.items()]
DTYPES = [pytest.param(jnp.dtype(d), id=jnp.dtype(d).name) for d in surrogates.FLOAT_DTYPES]
SHAPES = [(), (7,), (3, 5)]


def _special_inputs(dtype) -> jnp.ndarray:
  fi = jnp.finfo(dtype)
  vals = [0.0, -0.0, float(fi.smallest_subnormal), float(fi.tiny), float(fi.eps), 0.5, 1.0, 3.0, float(fi.max), np.inf]
  return jnp.asarray(np.array(vals + [-v for v in vals], dtype=np.float64).astype(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("s", DEFAULTS)
def test_forward_is_exactly_heaviside(s, dtype):
  x = _special_inputs(dtype)
  expected = np.where(np.signbit(np.asarray(x, np.float64)) & (np.asarray(x, np.float64) != 0), 0.0, 1.0)
  for fn in (s, jax.jit(s)):
    y = fn(x)
    assert y.dtype == dtype
    np.testing.assert_array_equal(np.asarray(y, np.float64), expected)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("s", DEFAULTS)
def test_dtype_and_shape_are_preserved(s, dtype):
  # The traced output types: what any compiled or eager call returns, without compiling one.
  quantities = lambda v: (s(v), s.surrogate_grad(v), s.surrogate_fun(v), jax.grad(lambda u: s(u).sum())(v))
  for shape in SHAPES:
    for out in jax.eval_shape(quantities, jax.ShapeDtypeStruct(shape, dtype)):
      assert out.dtype == dtype and out.shape == shape


def _invalid_values(domain) -> list:
  return {
      id(POSITIVE): [0.0, -1.0, float("nan"), float("inf"), np.array([1.0, 0.0])],
      id(NON_NEGATIVE): [-1e-3, float("nan"), np.array([0.0, -1.0])],
      id(POSITIVE_INT): [0, 1.5, -2, np.array([2, 3])],
      id(REAL): [float("nan"), float("inf"), np.array([1.0, np.nan])],
  }[id(domain)]


#: Not real numbers, whatever the domain: strings (also of numbers), booleans, complex, None, objects.
NOT_NUMBERS = ["wide", "4", True, False, np.bool_(True), 1 + 2j, None, object(), [1.0]]


@pytest.mark.parametrize("cls", [pytest.param(c, id=n) for n, c in surrogates.REGISTRY.items()])
def test_invalid_parameters_raise_value_error_naming_surrogate_and_parameter(cls):
  for name, spec in cls.parameter_specs().items():
    for bad in [*_invalid_values(spec.domain), *NOT_NUMBERS]:
      with pytest.raises(ValueError, match=rf"{cls.__name__}: parameter '{name}'"):
        cls(**{name: bad})


@pytest.mark.parametrize("cls", [pytest.param(c, id=n) for n, c in surrogates.REGISTRY.items()])
def test_numbers_and_concrete_jax_values_are_accepted_as_python_numbers(cls):
  defaults = cls()
  for name, spec in cls.parameter_specs().items():
    value = spec.default
    for given in (np.float64(value), jnp.asarray(value), np.asarray(value), np.int64(value) if spec.static else value):
      s = cls(**{name: given})
      assert s == defaults and hash(s) == hash(defaults)
      assert type(getattr(s, name)) is (int if spec.static else float)


def test_unknown_parameter_names_list_the_accepted_ones():
  with pytest.raises(ValueError, match="unknown parameter 'alhpa'; accepted: alpha"):
    surrogates.Sigmoid(alhpa=2.0)
  with pytest.raises(TypeError, match="accepted: sigma, alpha"):  # also a TypeError, like any unknown keyword
    surrogates.get("GaussianGrad", sgima=1.0)
  with pytest.raises(ValueError, match="accepted: k"):
    surrogates.triangular(width=1.0)


@pytest.mark.parametrize(
    ("alias", "name", "bad"),
    [("triangular", "k", 0.0), ("triangular", "k", "1"), ("superspike", "k", -1.0), ("fast_sigmoid", "slope", True),
     ("spyx_arctan", "k", 0.0), ("spyx_arctan", "k", float("inf"))],
)
def test_every_alias_validates_its_own_parameters(alias, name, bad):
  with pytest.raises(ValueError, match=rf"{alias}: parameter '{name}'"):
    surrogates.get(alias, **{name: bad})


def test_registry_lookup_and_functional_forms():
  x = jnp.linspace(-2, 2, 9)
  for name, cls in surrogates.REGISTRY.items():
    functional = surrogates.FUNCTIONAL[surrogates.snake_case(name)]
    assert surrogates.get(name) == cls() == surrogates.get(surrogates.snake_case(name))
    g = jax.grad(lambda v, f=functional: f(v).sum())(x)
    np.testing.assert_array_equal(g, cls().surrogate_grad(x))
  assert surrogates.get("Sigmoid", alpha=2.0).alpha == 2.0
  assert surrogates.sigmoid(jnp.array(0.0), alpha=2.0) == 1.0
  with pytest.raises(ValueError, match="NoSuchSurrogate"):
    surrogates.get("NoSuchSurrogate")
  with pytest.raises(ValueError, match="did you mean 'Sigmoid'"):
    surrogates.get("Sigmiod")
  with pytest.raises(KeyError):  # still a KeyError for callers that looked names up before
    surrogates.get("sigmoidd")


def test_public_names_are_explicit_and_cover_the_registry():
  from surrogates import _library

  classes = {n for n in _library.__all__ if isinstance(getattr(_library, n), type)}
  assert classes == set(surrogates.REGISTRY)
  assert set(_library.__all__) - classes == {surrogates.snake_case(n) for n in surrogates.REGISTRY}
  for name in surrogates.__all__:
    assert hasattr(surrogates, name), name
  for name, cls in surrogates.REGISTRY.items():
    functional = getattr(surrogates, surrogates.snake_case(name))
    assert functional is surrogates.FUNCTIONAL[surrogates.snake_case(name)]
    assert functional.__name__ == surrogates.snake_case(name) and cls.__name__ in functional.__doc__


# ---------------------------------------------------------------------------------------------
# Transforms (at the defaults here; the verification of the reference repeats them through its
# autodiff check at every representative parameter set)
# ---------------------------------------------------------------------------------------------


def _sample(s, n=16, seed=0):
  # Points over the interesting range, kept off the kinks (a kink's derivative is a convention).
  x = jax.random.uniform(jax.random.key(seed), (n,), jnp.float64, -4, 4) * s.length_scale()
  for k in s.kinks():
    x = jnp.where(jnp.abs(x - k) < 1e-3 * s.length_scale(), x + 2e-3 * s.length_scale(), x)
  return x


@pytest.mark.parametrize("s", DEFAULTS)
def test_jit_equals_eager_and_vmap_equals_loop(s):
  x = _sample(s)
  # Vectorised and scalar code paths of exp/log/cos may differ by an ulp or two: 8 eps of float64.
  tol = {"rtol": 8 * np.finfo(np.float64).eps, "atol": 8 * np.finfo(np.float64).eps * max(1.0, s.peak())}
  for fn in (s, s.surrogate_grad, s.surrogate_fun, jax.grad(lambda v: s(v))):
    eager = np.stack([np.asarray(fn(xi)) for xi in x])
    np.testing.assert_allclose(np.asarray(jax.vmap(fn)(x)), eager, **tol)
    np.testing.assert_allclose(np.asarray(jax.jit(jax.vmap(fn))(x)), eager, **tol)


@pytest.mark.parametrize("s", DEFAULTS)
def test_vjp_and_jvp_use_g_with_any_cotangent(s):
  x = _sample(s)
  ct = jax.random.normal(jax.random.key(1), x.shape, x.dtype)
  g = s.surrogate_grad(x)
  y, vjp = jax.vjp(s, x)
  np.testing.assert_array_equal(y, s(x))
  np.testing.assert_allclose(vjp(ct)[0], ct * g, rtol=1e-15)
  _, tangent_out = jax.jvp(s, (x,), (ct,))
  np.testing.assert_allclose(tangent_out, g * ct, rtol=1e-15)
  np.testing.assert_allclose(jnp.diag(jax.jacfwd(s)(x)), g, rtol=1e-15)
  np.testing.assert_allclose(jnp.diag(jax.jacrev(s)(x)), g, rtol=1e-15)


@pytest.mark.parametrize("s", DEFAULTS)
def test_second_order_is_the_derivative_of_g(s):
  x = _sample(s, n=16)
  second = jax.vmap(jax.grad(jax.grad(s)))(x)
  dg = jax.vmap(jax.grad(s.surrogate_grad))(x)
  assert np.all(np.isfinite(second))
  np.testing.assert_allclose(second, dg, rtol=1e-12, atol=1e-12 * s.peak() / s.length_scale())
  hess = jax.hessian(lambda v: s(v).sum())(x)
  np.testing.assert_allclose(jnp.diag(hess), dg, rtol=1e-12, atol=1e-12 * s.peak() / s.length_scale())


# ---------------------------------------------------------------------------------------------
# One declaration: what registration refuses
# ---------------------------------------------------------------------------------------------


def _declare(body: dict, fields: dict | None = None, bases=(surrogates.Surrogate,)):
  """A surrogate class built from a namespace, registered into a scratch copy of the registry."""
  import dataclasses
  import unittest.mock

  ns = {"__annotations__": {k: float for k in (fields or {})}, **(fields or {}), **body}
  cls = dataclasses.dataclass(frozen=True, repr=False)(type("Planted", bases, ns))
  with unittest.mock.patch.dict(surrogates.REGISTRY, clear=False):
    return surrogates.register(cls)


_COMPLETE = {
    "examples": ({},),
    "_grad": lambda self, x: self.alpha * jnp.exp(-self.alpha * jnp.abs(x)),
    "_fun": lambda self, x: x,
    "mass": lambda self: 2.0,
    "limits": lambda self: surrogates.Limits(0.0, 0.0, -1.0, 1.0),
    "length_scale": lambda self: 1.0 / self.alpha,
}


def test_a_complete_declaration_registers():
  cls = _declare(_COMPLETE, {"alpha": surrogates.param(1.0, POSITIVE)})
  assert cls(alpha=2.0).mass() == 2.0 and "Planted" not in surrogates.REGISTRY


@pytest.mark.parametrize(
    ("change", "fields", "message"),
    [
        ({}, {"alpha": 1.0}, "'alpha' is not declared with param"),
        ({}, {"alpha": dataclasses.field(default=1.0, metadata={"domian": POSITIVE})}, "unknown metadata"),
        ({"domains": {"alhpa": POSITIVE}}, None, "declares 'domains'"),
        ({"mass": None}, None, "does not declare mass"),
        ({"limits": None}, None, "does not declare limits"),
        ({"length_scale": None}, None, "does not declare length_scale"),
        ({"_fun": None}, None, "does not declare _fun"),
        ({"smoothness": "smooth"}, None, "smoothness 'smooth'"),
        ({"examples": ({"alpha": 2.0},)}, None, "must be the defaults"),
        ({"examples": ({}, {"alhpa": 2.0})}, None, "unknown parameter 'alhpa'"),
        ({"examples": ({}, {"alpha": -2.0})}, None, "'alpha' must be > 0"),
    ],
)
def test_an_incomplete_declaration_is_an_error_at_registration(change, fields, message):
  body = {k: v for k, v in {**_COMPLETE, **change}.items() if v is not None}
  with pytest.raises(TypeError, match=message):
    _declare(body, fields or {"alpha": surrogates.param(1.0, POSITIVE)})


def test_period_is_on_the_base_class():
  for s in surrogates.instances():
    assert s.periodic == (s.period() is not None)
    assert (s.period() is None) == (s.limits() is not None)
  assert surrogates.SquarewaveFourierSeries(t_period=3.0).period() == 3.0


@pytest.mark.parametrize("base", [surrogates.Arctan(alpha=4.0), surrogates.SquarewaveFourierSeries(n=3),
                                  surrogates.S2NN(), surrogates.PiecewiseLeakyRelu()], ids=repr)
def test_scaled_forwards_every_piece_of_metadata(base):
  c = 0.25
  s = surrogates.Scaled(base, c)
  x = np.linspace(-3, 3, 7)
  assert (s.name, s.params, s.smoothness, s.examples) == (base.name, base.params, base.smoothness, base.examples)
  assert (s.kinks(), s.jumps(), s.period(), s.periodic) == (base.kinks(), base.jumps(), base.period(), base.periodic)
  assert (s.length_scale(), s.primitive_rtol()) == (base.length_scale(), base.primitive_rtol())
  assert s.saturation() == base.saturation()
  assert s.peak() == pytest.approx(c * base.peak(), rel=1e-12)
  np.testing.assert_equal(s.mass(), c * base.mass())
  assert s.limits() == (None if base.limits() is None else surrogates.Limits(*(c * v for v in base.limits())))
  cond = base.argument_condition(x)
  if cond is None:
    assert s.argument_condition(x) is None
  else:
    np.testing.assert_allclose(s.argument_condition(x), c * cond)
  np.testing.assert_allclose(s.surrogate_grad(jnp.asarray(x)), c * base.surrogate_grad(jnp.asarray(x)), rtol=1e-15)


# ---------------------------------------------------------------------------------------------
# Parameters as data: traced, batched and differentiated, for every registry surrogate
# ---------------------------------------------------------------------------------------------

CLASSES = [pytest.param(c, id=n) for n, c in surrogates.REGISTRY.items() if c.dynamic_parameters()]


def _theta_step(value: float) -> float:
  """A power of two near 1e-3 of the parameter (of 1 at 0): x ± h exact, truncation ~1e-7 relative."""
  return 2.0 ** np.floor(np.log2(1e-3 * (abs(value) or 1.0)))


def _varied(s, name: str, values: np.ndarray):
  """A batch of s along one parameter (built as a pytree: stencil points may leave the domain, where
  the formulas still hold and traced values are not validated)."""
  leaves, treedef = jax.tree_util.tree_flatten(s)
  batch = [jnp.full(len(values), v) for v in leaves]
  batch[type(s).dynamic_parameters().index(name)] = jnp.asarray(values)
  return jax.tree_util.tree_unflatten(treedef, batch)


def _quantities(s, x, ct, names=("g", "P", "dg", "dP", "dH", "dvjp", "grad_ct_g")):
  """g, P, their derivatives in every parameter (forward mode: one per point), H's, and the VJP's
  (those in ``names``)."""
  vjp = lambda t: jax.vjp(t, x)[1](ct)[0]
  every = {
      "g": lambda: s.surrogate_grad(x),
      "P": lambda: s.surrogate_fun(x),
      "dg": lambda: jax.jacfwd(lambda t: t.surrogate_grad(x))(s),
      "dP": lambda: jax.jacfwd(lambda t: t.surrogate_fun(x))(s),
      "dH": lambda: jax.jacfwd(lambda t: t(x))(s),
      "dvjp": lambda: jax.jacfwd(vjp)(s),
      "grad_ct_g": lambda: jax.grad(lambda t: jnp.vdot(ct, t.surrogate_grad(x)))(s),
  }
  return {name: every[name]() for name in names}


@pytest.mark.parametrize("cls", CLASSES)
def test_grad_vmap_and_jit_over_parameters_agree_with_central_differences(cls):
  """Every representative set, every non-static parameter, float64. One compiled function per class
  (parameters are arguments); a vmapped batch carries the finite-difference stencil in θ."""
  quantities = jax.jit(_quantities)
  # the stencil needs g, P and (for the vmap check) their derivatives only
  batched = jax.jit(jax.vmap(lambda t, x, ct: _quantities(t, x, ct, ("g", "P", "dg", "dP")), in_axes=(0, None, None)))
  for example in cls.examples:
    s = cls(**example)
    L = s.length_scale()
    x = jnp.asarray(_sample(s, n=24, seed=3))
    ct = jax.random.normal(jax.random.key(2), x.shape, x.dtype) + 0.5
    single = quantities(s, x, ct)
    for leaf in jax.tree_util.tree_leaves(single["dH"]):
      assert np.all(np.asarray(leaf) == 0.0), f"{s}: H depends on a parameter"
    np.testing.assert_allclose(single["g"], s.surrogate_grad(x), rtol=1e-13, atol=1e-13 * s.peak(),
                               err_msg=f"{s}: traced g differs from concrete g")
    for name in cls.dynamic_parameters():
      theta, h = getattr(s, name), _theta_step(getattr(s, name))
      batch = batched(_varied(s, name, theta + h * np.arange(-2.0, 3.0)), x, ct)
      for q, scale in (("g", s.peak()), ("P", max(1.0, s.peak() * L))):
        f = np.asarray(batch[q])
        c1, c2 = (f[3] - f[1]) / (2 * h), (f[4] - f[0]) / (4 * h)
        fd, est = c1 + (c1 - c2) / 3, np.abs(c1 - c2) / 3
        ad = np.asarray(getattr(single["d" + q], name))
        # Richardson on central differences in θ (h ≈ 1e-3·θ): est bounds the truncation of the
        # unextrapolated difference, so 4·est covers what is left; rounding is ~eps·|f|/h per value.
        rounding = 64 * np.finfo(np.float64).eps * np.max(np.abs(f), axis=0) / h
        tol = 4 * est + rounding + 1e-12 * scale / (abs(theta) or 1)
        np.testing.assert_array_less(np.abs(ad - fd), tol, err_msg=f"{s}: d{q}/d{name} against central differences")
        # the vmapped batch's centre is the unbatched value (same compiled kernel, vectorised)
        np.testing.assert_allclose(np.asarray(getattr(batch["d" + q], name))[2], ad, rtol=1e-13,
                                   atol=1e-13 * np.max(np.abs(ad)), err_msg=f"{s}: vmap over {name}")
      dg = np.asarray(getattr(single["dg"], name))
      np.testing.assert_allclose(getattr(single["dvjp"], name), np.asarray(ct) * dg, rtol=1e-14,
                                 atol=1e-14 * np.max(np.abs(dg)), err_msg=f"{s}: d(VJP)/d{name} is not ct·dg/d{name}")
      np.testing.assert_allclose(getattr(single["grad_ct_g"], name), np.dot(np.asarray(ct), dg),
                                 rtol=1e-12, atol=1e-12 * np.sum(np.abs(dg)), err_msg=f"{s}: reverse mode in {name}")


def _edge_inputs(dtype) -> jnp.ndarray:
  fi = jnp.finfo(dtype)
  vals = [0.0, float(fi.smallest_subnormal), float(fi.tiny), float(fi.eps), 0.5, 1.0, 3.0, 100.0, 1e4,
          float(fi.max) ** 0.5, float(fi.max) / 3, float(fi.max)]
  return jnp.asarray(np.array(vals + [-v for v in vals], dtype=np.float64).astype(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("cls", CLASSES)
def test_parameter_derivatives_are_finite_at_edge_inputs(cls, dtype):
  """dg/dθ and dP/dθ finite at every finite edge input wherever g and P are (all of them), parameters
  traced as arguments of one compiled function (one compilation per class and dtype)."""
  x = _edge_inputs(dtype)
  xf = np.asarray(x, np.float64)
  fn = jax.jit(lambda s, v: (jax.jacfwd(lambda t: t.surrogate_grad(v))(s), jax.jacfwd(lambda t: t.surrogate_fun(v))(s)))
  for example in cls.examples:
    s = cls(**example)
    dg, dP = fn(s, x)
    for q, tree in (("g", dg), ("P", dP)):
      for name in cls.dynamic_parameters():
        d = np.asarray(getattr(tree, name)).astype(np.float64)
        assert d.dtype == np.float64 and np.asarray(getattr(tree, name)).dtype == dtype
        bad = ~np.isfinite(d)
        # A periodic g depends on x/T: dg/dT ~ |x·g'(x)|/T, beyond the dtype's range at huge |x| (the
        # declared argument condition bounds |x·g'|): no finite value is right there.
        cond = s.argument_condition(xf)
        if cond is None and s.period() is not None:  # |x·g'(x)| <= |x|·peak/width (at a kink too)
          cond = np.abs(xf) * s.peak() / s.length_scale()
        if cond is not None:
          bad &= ~(np.asarray(cond) / abs(getattr(s, name)) > float(jnp.finfo(dtype).max) / 16)
        assert not bad.any(), f"{s}: d{q}/d{name} = {d[bad][0]} at x = {np.asarray(x, np.float64)[bad][0]} ({dtype})"


def test_a_batch_of_parameters_is_one_pytree_and_metadata_needs_concrete_values():
  alphas = np.array([0.5, 1.0, 4.0, 100.0])
  batch = surrogates.Sigmoid(alpha=alphas)  # validated per element
  x = jnp.linspace(-1, 1, 5)
  got = jax.vmap(lambda s: s.surrogate_grad(x))(batch)
  want = np.stack([surrogates.Sigmoid(alpha=a).surrogate_grad(x) for a in alphas])
  np.testing.assert_allclose(got, want, rtol=1e-15)
  # per-neuron parameters broadcast against the input
  np.testing.assert_allclose(batch.surrogate_grad(jnp.full(4, 0.3)), [surrogates.Sigmoid(alpha=a).surrogate_grad(0.3)
                                                                      for a in alphas], rtol=1e-15)
  twin = surrogates.Sigmoid(alpha=alphas.copy())
  assert batch == twin and hash(batch) == hash(twin) and batch != surrogates.Sigmoid(alpha=2 * alphas)
  with pytest.raises(surrogates.ConcreteParametersRequired, match="array of shape"):
    batch.length_scale()
  with pytest.raises(surrogates.ConcreteParametersRequired, match="'alpha' is traced"):
    jax.jit(lambda s: s.kinks())(surrogates.PiecewiseQuadratic())
  with pytest.raises(TypeError, match="traced"):
    jax.jit(lambda a: hash(surrogates.Sigmoid(alpha=a)))(1.0)
  with pytest.raises(ValueError, match=r"'n' must be .*static"):
    jax.jit(lambda n: surrogates.SquarewaveFourierSeries(n=n))(3)
  # static parameters are structure, not leaves: a new n is a new compilation, a new t_period is not
  leaves = jax.tree_util.tree_leaves(surrogates.SquarewaveFourierSeries(n=3, t_period=2.0))
  assert leaves == [2.0]


@pytest.mark.parametrize("cls", list(surrogates.REGISTRY.values()), ids=list(surrogates.REGISTRY))
def test_per_neuron_parameters_give_each_neuron_its_own_surrogate(cls):
  """Every float parameter as one value per neuron (an array broadcast against a (batch, neuron) input): g and P
  at each neuron equal those of the surrogate built with that neuron's scalar values, in float64 and float32, to
  8 ulp of the dtype relative to the largest value: a scalar parameter's constants (α², 1/α, ...) are computed on
  the host in float64 and rounded once, an array's in the dtype, a few roundings apart."""
  base = cls.examples[-1]
  specs = cls.parameter_specs()
  scales = np.array([0.5, 1.0, 2.0])
  per = {n: float(base.get(n, specs[n].default)) * scales for n in cls.dynamic_parameters()}
  x64 = np.linspace(-3.0, 3.0, 4 * 3).reshape(4, 3)
  for dtype in (jnp.float64, jnp.float32):
    x = jnp.asarray(x64, dtype)
    batch = cls(**{**base, **{n: jnp.asarray(v, dtype) for n, v in per.items()}})
    for q in ("surrogate_grad", "surrogate_fun"):
      got = np.asarray(getattr(batch, q)(x))
      for j in range(len(scales)):
        one = cls(**{**base, **{n: float(v[j]) for n, v in per.items()}})
        want = np.asarray(getattr(one, q)(x[:, j]))
        eps = float(jnp.finfo(dtype).eps)
        np.testing.assert_allclose(got[:, j], want, rtol=8 * eps, atol=8 * eps * float(np.max(np.abs(want))),
                                   err_msg=f"{cls.__name__}.{q} neuron {j} ({dtype.__name__})")


def test_float32_parameters_do_not_promote_a_float16_input():
  s = surrogates.Sigmoid(alpha=jnp.float32(4.0))
  assert s.alpha == 4.0
  x = jnp.asarray([0.1, -0.2], jnp.float16)
  batch = surrogates.Sigmoid(alpha=np.array([4.0, 2.0]))
  for q in (s.surrogate_grad(x), batch.surrogate_grad(x), jax.jit(lambda t: t.surrogate_fun(x))(batch)):
    assert q.dtype == jnp.float16
