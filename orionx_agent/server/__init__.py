"""orionx-gpu-server: one process per physical GPU, serving many sessions.

Layout, one job per module:

* ``server``: listeners (unix, TCP, TLS) and the session registry;
* ``session``: one client's session: frame loop, dispatch derived from
  ``guest_runtime.protocol.OPS``, handle translation, sticky errors;
* ``memory_map``: a session's allocations and its quota, pointer checks;
* ``scheduler``: the hook every launch passes (compute shares, issue 5);
* ``backend``: what a session asks of a backend;
* ``sim_backend`` / ``sim_kernels``: the simulated GPU;
* ``cuda_backend`` / ``cuda_kernels``: real GPUs through cuda-python;
* ``factory``: a server and its backend from ``[gpu_server]`` options.

The wire protocol itself lives in ``guest_runtime.protocol`` (the guest
imports it too) and is described in ``docs/protocol.md``.
"""
