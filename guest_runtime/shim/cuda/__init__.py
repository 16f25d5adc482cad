"""OrionX stand-in for cuda-python's ``cuda`` package, put first on
PYTHONPATH by orionx-run so this process's CUDA calls go to the pool."""
