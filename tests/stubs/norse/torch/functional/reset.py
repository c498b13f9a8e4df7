# ruff: noqa
# norse/torch/functional/reset.py (1.1.0)
def reset_value(z, v, reset, th):
  return (1 - z) * v + z * reset


def reset_subtract(z, v, reset, th):
  return (1 - z) * v + z * (v - th)
