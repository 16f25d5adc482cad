"""The directory orionx-run puts first on PYTHONPATH (it is a package only so
that it ships with guest_runtime): there, ``cuda`` is OrionX's stand-in for
cuda-python, so ``from cuda.bindings import driver`` gets guest_runtime.cuda."""
