# ruff: noqa
import math

import torch

from norse.torch.functional.heaviside import heaviside
from norse.torch.functional.superspike import super_fn

superspike_fn = super_fn


class _Base(torch.autograd.Function):
  @staticmethod
  def forward(ctx, x, k):
    ctx.save_for_backward(x)
    ctx.k = k
    return heaviside(x)


class HeaviErfc(_Base):
  @staticmethod
  def backward(ctx, dy):
    (x,) = ctx.saved_tensors
    return dy * 2 * torch.exp(-(ctx.k * x).pow(2)) / math.sqrt(math.pi), None


class HeaviTanh(_Base):
  @staticmethod
  def backward(ctx, dy):
    (x,) = ctx.saved_tensors
    return dy * (1 - (x * ctx.k).tanh().pow(2)), None


class HeaviCirc(_Base):
  @staticmethod
  def backward(ctx, dy):
    (x,) = ctx.saved_tensors
    a = ctx.k
    return dy * (-(x.pow(2) / (2 * (a**2 + x.pow(2)).pow(1.5))) + 1 / (2 * (a**2 + x.pow(2)).sqrt())) * 2 * a, None


class Triangle(_Base):
  @staticmethod
  def backward(ctx, grad_output):
    (x,) = ctx.saved_tensors
    return grad_output.clone() * ctx.k * torch.relu(1 - x.abs()), None


def heavi_erfc_fn(x, k):
  return HeaviErfc.apply(x, k)


def heavi_tanh_fn(x, k):
  return HeaviTanh.apply(x, k)


def heavi_circ_fn(x, k):
  return HeaviCirc.apply(x, k)


def triangle_fn(x, alpha=0.3):
  return Triangle.apply(x, alpha)


def threshold(x, method, alpha):
  # norse/torch/functional/threshold.py (1.1.0) L195: the LIF steps' dispatch by name
  if method == "heaviside":
    return heaviside(x)
  if method == "super":
    return superspike_fn(x, torch.as_tensor(alpha))
  if method == "triangle":
    return triangle_fn(x, alpha)
  if method == "tanh":
    return heavi_tanh_fn(x, alpha)
  if method == "circ":
    return heavi_circ_fn(x, alpha)
  if method == "heavi_erfc":
    return heavi_erfc_fn(x, alpha)
  raise ValueError(f"Attempted to apply threshold function {method}, but no such function exist.")
