"""Forward exactness, dtypes and shapes, parameters, registry and transforms of the reference."""

from __future__ import annotations

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
  quantities = jax.jit(lambda v: (s(v), s.surrogate_grad(v), s.surrogate_fun(v), jax.grad(lambda u: s(u).sum())(v)))
  for shape in SHAPES:
    x = jax.random.normal(jax.random.key(0), shape, jnp.float32).astype(dtype)
    for out in quantities(x):
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
