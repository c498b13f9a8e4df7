"""Placeholder while the layer benchmark is written."""
from __future__ import annotations


class LayerCase:
  pass


def cases(cfg):
  return []


def run(benchmark, case, cfg):
  raise NotImplementedError
