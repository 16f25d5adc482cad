"""OrionX client runtime: the CUDA driver API of cuda-python, served by a
remote or local OrionX GPU server.

This package installs into bare guests: it imports the standard library and
numpy, nothing else (``tests/unit/test_guest_runtime_isolation.py`` proves it).
"""

__version__ = "0.1.0"
