"""OrionX client runtime: the CUDA driver API of cuda-python, served by a
remote or local OrionX GPU server.

* ``cuda``: cuda-python's ``cuda.bindings.driver`` names, served remotely;
* ``kernels``: the built-in kernels as functions;
* ``run``: ``orionx-run``, which runs a program with ``cuda`` in place;
* ``runtime``: where to connect (``ORIONX_ENDPOINT``, ``ORIONX_TOKEN``, ...);
* ``client``: the connection, its stubs derived from ``protocol``, the
  table of the wire protocol;
* ``endpoints``: endpoint strings, a VM's own endpoints, ``connect``;
* ``streams`` (unix, TCP, TLS sockets), ``shm_ring`` (shared-memory rings
  and their watchdog), ``vm_link`` with ``vm_devices`` (a KVM guest's link
  to its host's agent): the byte streams frames travel on.

Only what a guest runs lives here: the server's halves (request checks
and replies, shared-memory segments, the agent's side of the VM link,
HELLO's reader) are in ``orionx_agent``.

Session tokens are opaque here: the controller mints them and the host side
verifies them (``orionx_common.session_token``).

This package installs into bare guests: it imports the standard library and
numpy, nothing else (``tests/unit/test_guest_runtime_isolation.py`` proves it).
"""

__version__ = "0.1.0"
