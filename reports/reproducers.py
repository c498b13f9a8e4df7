"""A standalone reproducer script per defect: the library's public call at the defect's smallest input.

The call is the adapter's (the ``call`` note of the result, what ``verification/targets/*.py``
wrote), turned into a function of a one-element array ``x``: a call that ends in ``(x ...)`` is used
as written, a factory or instance gets ``(x)`` appended, sinabs' ``v_mem`` is ``x + threshold``,
and rockpool's autograd Functions get their numeric arguments as tensors (as its adapter passes
them). The script computes the quantity the check judged (H, g through the library's autograd, the
second derivative, P, an integral of g, dH/dparameter), prints expected and got, and exits 1 while
the defect is present, 0 once it is fixed. Expected values are the reference's, as the check
computed them (in the JSON), or a limit that needs no reference (a finite value, the input's dtype,
0, central differences of the library's own g).
"""

from __future__ import annotations

import math
import re
from typing import Any

from .defects import Defect, quantity

#: Libraries whose calls are JAX functions (the others are torch), unless the call's module says ``.jax.``.
JAX_LIBRARIES = {"braintools", "brainpy", "snnax", "spyx", "jaxsnn"}
#: Module paths that are attributes of their parent, not importable modules (brainpy.math.surrogate is braintools').
IMPORT_AS = {"brainpy.math.surrogate": "brainpy.math"}
#: Libraries whose autograd Functions take tensors for their numeric arguments.
TENSOR_ARGS = {"rockpool"}


def framework(library: str, call: str) -> str:
  return "jax" if library in JAX_LIBRARIES or ".jax." in call else "torch"


def expression(library: str, call: str) -> str:
  """The adapter's call as a Python expression of ``x``."""
  sinabs = re.fullmatch(r"(.*) with v_mem = x \+ spike_threshold", call)
  if sinabs:
    expr = sinabs.group(1)
    theta = re.search(r"apply\(v_mem, ([^,]+),", expr)
    expr = expr.replace("v_mem", f"(x + {theta.group(1) if theta else '0.0'})", 1)
  elif re.search(r"\(x\b", call):
    expr = call
  else:
    expr = call + "(x)"
  if library in TENSOR_ARGS and framework(library, call) == "torch":
    expr = re.sub(r", ([-+]?[\d.]+(?:e[-+]?\d+)?)", r", torch.tensor(\1)", expr)
  return expr


def modules(expr: str) -> list[str]:
  """The modules to import for an expression: each dotted name up to its first class or last function."""
  out = []
  for name in re.findall(r"(?<![\w.])([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+)", expr):
    parts = name.split(".")
    if parts[0] in ("torch", "jax", "jnp", "np", "x"):
      continue
    cut = next((i for i, p in enumerate(parts) if i and p[:1].isupper()), len(parts) - 1)
    if cut:
      module = ".".join(parts[:cut])
      out.append(IMPORT_AS.get(module, module))
  return list(dict.fromkeys(out))


def _instance(expr: str) -> str:
  """``Cls(args)(x)`` -> ``Cls(args)`` (the object whose methods give P and surrogate_grad)."""
  return expr[:-3] if expr.endswith("(x)") else expr


def _quantity_fn(library: str, fw: str, expr: str, q: str) -> str | None:
  """Source of ``def quantity(x):`` for H, g, g2, jvp, P, dP, sg, d2H; None where the call has none."""
  obj = _instance(expr)
  if q == "P":
    if library == "spikingjelly":
      body = re.sub(r"\((.*)\)$", r".primitive_function(x, \1)", obj)
      body = body.replace("(x, )", "(x)")
    elif fw == "jax" and obj != expr:
      body = f"{obj}.surrogate_fun(x)"
    else:
      return None
    return f"def quantity(x):\n  return {body}\n"
  if q == "sg":
    if obj == expr:
      return None
    return f"def quantity(x):\n  return {obj}.surrogate_grad(x)\n"
  if q == "dP":
    if fw != "jax" or obj == expr:
      return None
    return f"def quantity(x):\n  return jax.grad(lambda v: {obj}.surrogate_fun(v).sum())(x)\n"
  if q == "H":
    return "def quantity(x):\n  return spike(x)\n" if fw == "jax" else \
        "def quantity(x):\n  with torch.no_grad():\n    return spike(x)\n"
  if fw == "jax":
    return {
        "g": "def quantity(x):\n  return jax.grad(lambda v: spike(v).sum())(x)\n",
        "jvp": "def quantity(x):\n  return jax.jvp(spike, (x,), (jnp.ones_like(x),))[1]\n",
        "g2": "def quantity(x):\n  return jax.grad(lambda v: jax.grad(lambda u: spike(u).sum())(v).sum())(x)\n",
        "d2H": "def quantity(x):\n  return jax.grad(lambda v: jax.grad(lambda u: spike(u).sum())(v).sum())(x)\n",
    }.get(q)
  return {
      "g": ("def quantity(x):\n  x = x.clone().requires_grad_(True)\n"
            "  (gx,) = torch.autograd.grad(spike(x).sum(), x)\n  return gx\n"),
      "g2": ("def quantity(x):\n  x = x.clone().requires_grad_(True)\n"
             "  (gx,) = torch.autograd.grad(spike(x).sum(), x, create_graph=True)\n"
             "  (g2,) = torch.autograd.grad(gx.sum(), x)\n  return g2\n"),
  }.get(q)


def _array(fw: str) -> str:
  if fw == "jax":
    return "def array(v, dtype=DTYPE, many=False):\n  return jnp.asarray(v if many else [v], dtype=dtype)\n"
  return ("def array(v, dtype=DTYPE, many=False):\n"
          "  return torch.tensor(np.asarray(v if many else [v], np.float64), dtype=getattr(torch, dtype))\n")


def _value(fw: str) -> str:
  if fw == "jax":
    return ("def values(a):\n  return np.asarray(a, np.float64).reshape(-1)\n\n\n"
            "def value(a):\n  return float(values(a)[0])\n")
  return ("def values(a):\n  return a.detach().double().numpy().reshape(-1)\n\n\n"
          "def value(a):\n  return float(values(a)[0])\n")


def _float(v: Any) -> str:
  if v is None:
    return "None"
  v = float(v)
  return repr(v) if math.isfinite(v) else f"float({str(v)!r})"


def plan(d: Defect) -> dict[str, Any] | None:
  """What the reproducer computes for a defect, or None (with :func:`why_not` saying why)."""
  r = d.example
  call = str(r.notes.get("call", r.label))
  fw = framework(d.library, call)
  dg = r.diagnosis
  x = dg.worst_input
  dtype = dg.dtype or "float64"
  out: dict[str, Any] = {"framework": fw, "call": call, "expr": expression(d.library, call), "x": x, "dtype": dtype,
                         "expected": dg.expected, "tolerance": dg.tolerance}
  q = quantity(r)
  if d.kind == "raises":
    m = r.message
    q = "H" if re.search(r"\bH raised", m) else "jvp" if "jax.jvp" in m and fw == "jax" else \
        "g2" if "second order" in m else "g"
    out.update(test="raises", quantity=q, x=0.5 if x is None else x)
  elif d.kind == "dtype":
    out.update(test="dtype", quantity=q, x=0.5 if x is None else x)
  elif d.kind == "second_order":
    if x is None:
      return None
    out.update(test="second_order", quantity="g2", dtype="float64")
  elif d.kind == "parameters":
    name = dg.extra.get("parameter")
    found = re.search(rf", {name} = ([-+\w.]+)", r.message) if name else None
    if fw != "jax" or not found or not re.search(rf"\b{name}=", call) or x is None:
      return None
    out.update(test="parameters", quantity="H", parameter=name, value=float(found.group(1)), expected=0.0,
               expr=re.sub(rf"\b{name}=[^,)]+", f"{name}=p", out["expr"]))
  elif d.kind == "quadrature":
    bad = [i for i in dg.extra.get("intervals") or () if isinstance(i, dict) and not i.get("ok", True)]
    if not bad:
      return None
    a, b = (float(v) for v in bad[0]["interval"])
    out.update(test="quadrature", quantity="g", a=a, b=b, expected=float(bad[0]["expected"]),
               tolerance=float(bad[0]["tolerance"]), dtype="float64")
  elif d.kind == "nonfinite":
    m = re.search(r"P\((-?inf)\) - P\(([^)]+)\)", r.message)
    if x is None:
      found = re.search(r"\bat x = ([-+\w.]+)", r.message)
      x = float(found.group(1)) if found else None
    if x is None:
      return None
    out.update(test="difference" if m else "value", x=x, quantity=q, other=float(m.group(2)) if m else None)
    if not m and dg.expected is None:
      out.update(expected=None)
  elif d.kind == "value":
    if x is None:
      return None
    out.update(test="value", quantity=q)
  else:
    return None
  if _quantity_fn(d.library, fw, out["expr"], out["quantity"]) is None:
    return None
  return out


def why_not(d: Defect) -> str:
  return (f"the {d.kind} defect's quantity ({quantity(d.example)}) is not reachable from the call "
          f"`{d.example.notes.get('call', d.example.label)}`, or the result names no input")


_CHECKS = {
    "raises": ("try:\n  got = quantity(array(X))\nexcept Exception as exc:  # the defect\n"
               "  print(f'expected: no exception; got {type(exc).__name__}: {exc}')\n  sys.exit(1)\n"
               "print(f'expected: no exception; got {value(got)!r}')\nsys.exit(0)\n"),
    "dtype": ("got = quantity(array(X))\nprint(f'expected dtype {DTYPE}, got {got.dtype}')\n"
              "sys.exit(0 if str(got.dtype).removeprefix('torch.') == DTYPE else 1)\n"),
    "value": ("got = value(quantity(array(X)))\n"
              "print(f'expected {EXPECTED!r} (tolerance {TOLERANCE!r}), got {got!r}')\n"
              "if EXPECTED is None:\n  sys.exit(0 if math.isfinite(got) else 1)\n"
              "sys.exit(0 if abs(got - EXPECTED) <= (TOLERANCE or 0.0) else 1)\n"),
    "difference": ("got = value(quantity(array(X))) - value(quantity(array(OTHER)))\n"
                   "print(f'expected {EXPECTED!r} (tolerance {TOLERANCE!r}), got {got!r}')\n"
                   "sys.exit(0 if abs(got - EXPECTED) <= (TOLERANCE or 0.0) else 1)\n"),
    "second_order": ("h = 1e-6 * max(1.0, abs(X))\n"
                     "g = {}\nexec(GRAD, globals(), g)\n"
                     "expected = (value(g['quantity'](array(X + h))) - value(g['quantity'](array(X - h)))) / (2 * h)\n"
                     "got = value(quantity(array(X)))\n"
                     "print(f'expected {expected!r} (central differences of g; tolerance {TOLERANCE!r}), '\n"
                     "      f'got {got!r}')\n"
                     "sys.exit(0 if abs(got - expected) <= TOLERANCE else 1)\n"),
    "quadrature": ("nodes, weights = np.polynomial.legendre.leggauss(20)\nedges = np.linspace(A, B, 257)\n"
                   "half = (edges[1:] - edges[:-1])[:, None] / 2\n"
                   "points = (edges[:-1] + edges[1:])[:, None] / 2 + nodes[None, :] * half\n"
                   "g = values(quantity(array(points.ravel(), DTYPE, many=True))).reshape(points.shape)\n"
                   "got = float((weights[None, :] * half * g).sum())\n"
                   "print(f'integral of g over [{A}, {B}]: expected {EXPECTED!r} (tolerance {TOLERANCE!r}), '\n"
                   "      f'got {got!r}')\n"
                   "sys.exit(0 if abs(got - EXPECTED) <= TOLERANCE else 1)\n"),
    "parameters": ("got = value(jax.jit(jax.grad(lambda p: spike_p(array(X), p).sum()))(VALUE))\n"
                   "print(f'expected dH/d{PARAMETER} = 0 (H is a step), got {got!r}')\n"
                   "sys.exit(0 if got == 0 else 1)\n"),
}


def script(d: Defect) -> str | None:
  """The reproducer's source, or None where the defect's quantity cannot be reached from the call."""
  p = plan(d)
  if p is None:
    return None
  fw, expr = p["framework"], p["expr"]
  pip = f"{d.library}=={d.version} " + ("jax numpy" if fw == "jax" else "torch numpy")
  r = d.example
  lines = [f"# pip install {pip}", f'"""{d.id}: {d.title}.', "",
           f"Check: {', '.join(d.checks)} ({len(d.results)} results, {len(d.calls)} calls); reference "
           f"{r.notes.get('reference', r.surrogate)} x {r.notes.get('scale', 1.0)}.",
           "Exits 1 while the defect is present, 0 once it is fixed.", '"""', "import math", "import sys", "",
           "import numpy as np"]
  if fw == "jax":
    lines += ["import jax", "import jax.numpy as jnp"]
  else:
    lines += ["import torch"]
  lines += [f"import {m}" for m in modules(expr)]
  if fw == "jax":
    lines.append('jax.config.update("jax_enable_x64", True)  # after the library, which may turn it off')
  lines += ["", f"X, DTYPE = {_float(p['x'])}, {p['dtype']!r}",
            f"EXPECTED, TOLERANCE = {_float(p.get('expected'))}, {_float(p.get('tolerance'))}", ""]
  if p["test"] == "parameters":
    lines += [f"PARAMETER, VALUE = {p['parameter']!r}, {p['value']!r}", "",
              f"def spike_p(x, p):\n  return {p['expr']}\n"]
  else:
    lines += [f"def spike(x):\n  return {expr}\n"]
  if p["test"] == "quadrature":
    lines.append(f"A, B = {p['a']!r}, {p['b']!r}\n")
  if p["test"] == "difference":
    lines.append(f"OTHER = {p['other']!r}\n")
  lines += ["", _array(fw), "", _value(fw), ""]
  if p["test"] == "second_order":
    grad = _quantity_fn(d.library, fw, expr, "g")
    lines.append(f"GRAD = {grad!r}\n")
  if p["test"] != "parameters":
    lines.append(_quantity_fn(d.library, fw, expr, p["quantity"]))
  lines.append(_CHECKS[p["test"]])
  text = "\n".join(lines)
  return re.sub(r"\n{3,}", "\n\n\n", text)
