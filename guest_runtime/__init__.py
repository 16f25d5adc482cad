"""OrionX client runtime: the CUDA driver API of cuda-python, served by a
remote or local OrionX GPU server.

* ``cuda``: cuda-python's ``cuda.bindings.driver`` names, served remotely;
* ``kernels``: the built-in kernels as functions;
* ``run``: ``orionx-run``, which runs a program with ``cuda`` in place;
* ``runtime``: where to connect (``ORIONX_ENDPOINT``, ``ORIONX_TOKEN``, ...);
* ``client``, ``transport``, ``protocol``: the connection, its byte streams
  (unix, shared memory, TCP, TLS) and the wire protocol.

Session tokens are opaque here: the controller mints them and the host side
verifies them (``orionx_common.session_token``).

This package installs into bare guests: it imports the standard library and
numpy, nothing else (``tests/unit/test_guest_runtime_isolation.py`` proves it).
"""

__version__ = "0.1.0"
