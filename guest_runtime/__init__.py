"""OrionX's guest side: what a program needs to run its CUDA on the pool.

A program's CUDA driver is ``libcuda.so.1``, the C library built from
``libcuda/`` into ``lib/``: NVIDIA's own cuda-python, cuda.core and Numba
CUDA, and C programs, run over it unchanged. The Python modules here are
what is not the CUDA API:

* ``run``: ``orionx-run``, which puts the library first for a program, and
  ``acquire_broker`` with ``acquire`` and ``controller_api``: acquire mode,
  bound on the program's behalf;
* ``protocol``: the table of the wire protocol (the library's codec and
  docs/protocol.md are generated from it), ``curesult`` its result codes,
  ``builtin_kernels`` the signatures of the kernels every backend serves;
* ``streams`` (unix, TCP, TLS sockets), ``shm_ring`` (shared-memory rings
  and their watchdog), ``endpoints`` (endpoint strings, ``connect``) and
  ``vm_link`` (the records of a KVM guest's link to its host's agent): the
  framing the GPU server and the agent share;
* ``client``: a protocol-level connection, one stub per op of the table,
  with which the server's tests and benchmarks drive it; not a CUDA API.

The server's halves (request checks and replies, shared-memory segments,
the agent's side of the VM link, HELLO's reader) are in ``orionx_agent``.
Session tokens are opaque here: the controller mints them and the host side
verifies them (``orionx_common.session_token``).

This package installs into bare guests: it imports the standard library
alone (``tests/unit/test_guest_runtime_isolation.py`` proves it).
"""

__version__ = "0.1.0"
