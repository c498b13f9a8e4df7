"""A stand-in for the ``braintools`` package: only its ``surrogate`` module, which is the reference's."""
