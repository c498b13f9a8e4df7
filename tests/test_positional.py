"""Parameters by position: ``sigmoid(x, 4.0)``, ``S2NN(4.0, 1.0, 1e-8)``, ``superspike(25.0)``.

Every class, functional form and alias takes its parameters by position in its declared order (the
dataclass field order; an alias's signature), which is braintools' order where braintools has the
surrogate, or by keyword. Too many positional values, or one parameter given both ways, is a
``TypeError`` naming the surrogate.
"""

from __future__ import annotations

import dataclasses
import inspect

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import surrogates

CLASSES = sorted(surrogates.REGISTRY)
ALIASES = sorted(surrogates.ALIASES)
X = jnp.linspace(-3.0, 3.0, 25, dtype=jnp.float32)

#: braintools 0.3.0's signatures (``braintools/surrogate/_impl.py``: each class's ``__init__`` and its
#: functional form ``name(x, ...)``, in the same order).
BRAINTOOLS_ORDER = {
    "Sigmoid": ("alpha",),
    "PiecewiseQuadratic": ("alpha",),
    "PiecewiseExp": ("alpha",),
    "SoftSign": ("alpha",),
    "Arctan": ("alpha",),
    "NonzeroSignLog": ("alpha",),
    "ERF": ("alpha",),
    "PiecewiseLeakyRelu": ("c", "w"),
    "SquarewaveFourierSeries": ("n", "t_period"),
    "S2NN": ("alpha", "beta", "epsilon"),
    "QPseudoSpike": ("alpha",),
    "LeakyRelu": ("alpha", "beta"),
    "LogTailedRelu": ("alpha",),
    "ReluGrad": ("alpha", "width"),
    "GaussianGrad": ("sigma", "alpha"),
    "MultiGaussianGrad": ("h", "s", "sigma", "scale"),
    "InvSquareGrad": ("alpha",),
    "SlayerGrad": ("alpha",),
}


def order(cls: type[surrogates.Surrogate]) -> list[str]:
  return [f.name for f in dataclasses.fields(cls)]


def parameter_sets(cls: type[surrogates.Surrogate]) -> list[list]:
  """Each representative parameter set, completed with the defaults, as positional values."""
  specs = cls.parameter_specs()
  return [[{**{n: s.default for n, s in specs.items()}, **example}[n] for n in order(cls)] for example in cls.examples]


def alias_values(name: str) -> list[float]:
  """Distinct valid values for an alias's parameters (1.5, 2.5, ... times their defaults)."""
  params = inspect.signature(surrogates.ALIASES[name]).parameters.values()
  return [(1.5 + i) * p.default for i, p in enumerate(params)]


def g_of(fn, *args, **kwargs):
  """The spike function's derivative in x (g) through a functional form called with these parameters."""
  return jax.grad(lambda x: fn(x, *args, **kwargs).sum())(X)


def positional_matches_keyword(fn, names: list[str], values: list) -> bool:
  """Whether ``fn(x, *values)`` has the derivative of ``fn(x, **dict(zip(names, values)))``."""
  return bool(np.array_equal(g_of(fn, *values), g_of(fn, **dict(zip(names, values, strict=True)))))


# ---- the declared order ---------------------------------------------------------------------


@pytest.mark.parametrize("name", CLASSES)
def test_functional_signature_is_the_declared_order(name):
  cls = surrogates.REGISTRY[name]
  params = list(inspect.signature(surrogates.FUNCTIONAL[surrogates.snake_case(name)]).parameters.values())
  assert [p.name for p in params] == ["x", *order(cls)]
  assert [p.default for p in params[1:]] == [cls.parameter_specs()[n].default for n in order(cls)]


def test_declared_order_is_braintools_order():
  for name, names in BRAINTOOLS_ORDER.items():
    assert tuple(order(surrogates.REGISTRY[name])) == names, name


def test_declared_order_is_the_installed_braintools_order():
  bt = pytest.importorskip("braintools.surrogate")
  for name in BRAINTOOLS_ORDER:
    theirs = list(inspect.signature(getattr(bt, surrogates.snake_case(name))).parameters)
    assert theirs == ["x", *order(surrogates.REGISTRY[name])], name
    assert list(inspect.signature(getattr(bt, name)).parameters) == order(surrogates.REGISTRY[name]), name


@pytest.mark.parametrize("name", CLASSES)
def test_class_binds_positions_in_declared_order(name):
  cls = surrogates.REGISTRY[name]
  for values in parameter_sets(cls):
    built = cls(*values)
    assert [getattr(built, n) for n in order(cls)] == values
    assert built == cls(**dict(zip(order(cls), values, strict=True)))


@pytest.mark.parametrize("name", ALIASES)
def test_alias_positional_equals_keyword(name):
  alias, values = surrogates.ALIASES[name], alias_values(name)
  names = list(inspect.signature(alias).parameters)
  assert alias(*values) == alias(**dict(zip(names, values, strict=True)))
  assert alias(*values) != alias(*values[:-1], 2 * values[-1])  # the last position is bound to the last parameter
  if len(values) > 1:
    assert alias(*values) != alias(*reversed(values))


# ---- positional = keyword, in values and derivatives ------------------------------------------


@pytest.mark.parametrize("name", CLASSES)
def test_functional_positional_equals_keyword(name):
  cls = surrogates.REGISTRY[name]
  fn = surrogates.FUNCTIONAL[surrogates.snake_case(name)]
  for values in parameter_sets(cls)[-1:] if order(cls) else [[]]:
    np.testing.assert_array_equal(fn(X, *values), fn(X, **dict(zip(order(cls), values, strict=True))))
    assert positional_matches_keyword(fn, order(cls), values)
    np.testing.assert_array_equal(g_of(fn, *values), cls(*values).surrogate_grad(X))


def test_positional_check_catches_a_wrong_order():
  """Planted defect: a form that binds its positions in reverse. The check above fails on it, and
  the real form passes at the same values (sigma = 5, alpha = 2: swapping them changes g)."""
  values = [5.0, 2.0]

  def reversed_form(x, *args, **kwargs):
    return surrogates.gaussian_grad(x, *reversed(args), **kwargs)

  assert not positional_matches_keyword(reversed_form, ["sigma", "alpha"], values)
  assert positional_matches_keyword(surrogates.gaussian_grad, ["sigma", "alpha"], values)


# ---- derivatives in a parameter given by position ----------------------------------------------


@pytest.mark.parametrize("name", [n for n in CLASSES if surrogates.REGISTRY[n].dynamic_parameters()])
def test_grad_in_a_positional_parameter(name):
  """argnums through the functional form: the spike's derivative in a parameter is exactly 0 (H does
  not depend on it) as with the keyword; g's derivative in it is the same by position and keyword."""
  cls = surrogates.REGISTRY[name]
  fn = surrogates.FUNCTIONAL[surrogates.snake_case(name)]
  values = parameter_sets(cls)[-1]
  i = order(cls).index(cls.dynamic_parameters()[0])
  p = order(cls)[i]
  x = jnp.float32(0.3)
  by_position = jax.grad(fn, argnums=1 + i)(x, *values)
  by_keyword = jax.grad(lambda a: fn(x, **{**dict(zip(order(cls), values, strict=True)), p: a}))(values[i])
  assert by_position == by_keyword == 0.0

  def g_sum(a, positional):
    vals = [*values[:i], a, *values[i + 1:]]
    s = cls(*vals) if positional else cls(**dict(zip(order(cls), vals, strict=True)))
    return s.surrogate_grad(X).sum()

  np.testing.assert_array_equal(jax.grad(g_sum)(values[i], True), jax.grad(g_sum)(values[i], False))


def test_grad_through_the_functional_form_with_a_traced_parameter():
  x = jnp.float32(0.0)
  assert jax.grad(lambda a: surrogates.sigmoid(X, a).sum())(4.0) == 0.0
  assert jax.grad(surrogates.s2nn, argnums=1)(x, 4.0, 1.0, 1e-8) == 0.0
  # g in alpha at x = 0 is alpha/4: derivative 1/4, by position
  assert jax.grad(lambda a: surrogates.Sigmoid(a).surrogate_grad(x))(4.0) == 0.25


# ---- errors name the surrogate ---------------------------------------------------------------


def callables():
  for name in CLASSES:
    cls = surrogates.REGISTRY[name]
    defaults = [cls.parameter_specs()[n].default for n in order(cls)]
    yield f"class-{name}", cls, name, order(cls), defaults
    snake = surrogates.snake_case(name)
    fn = surrogates.FUNCTIONAL[snake]
    yield f"functional-{snake}", (lambda *a, f=fn, **k: f(X, *a, **k)), snake, order(cls), defaults
  for name in ALIASES:
    params = inspect.signature(surrogates.ALIASES[name]).parameters
    yield f"alias-{name}", surrogates.ALIASES[name], name, list(params), [p.default for p in params.values()]


@pytest.mark.parametrize(("fn", "owner", "names", "defaults"), [c[1:] for c in callables()],
                         ids=[c[0] for c in callables()])
def test_too_many_or_duplicated_positions_name_the_surrogate(fn, owner, names, defaults):
  with pytest.raises(TypeError, match=rf"^{owner}\b.*takes .*got {len(names) + 1} by position"):
    fn(*defaults, 1.0)
  if names:
    with pytest.raises(TypeError, match=rf"^{owner}\b.*{names[0]!r} given both by position and by keyword"):
      fn(defaults[0], **{names[0]: defaults[0]})
