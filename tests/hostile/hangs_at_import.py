"""A target module whose import never finishes."""

while True:
  pass
