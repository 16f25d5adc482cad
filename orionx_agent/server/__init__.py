"""orionx-gpu-server: one process per physical GPU, serving many sessions.

Layout, one job per module:

* ``server``: listeners (unix, TCP, TLS) and the session registry;
* ``session``: one client's session: frame loop, dispatch derived from
  ``guest_runtime.protocol.OPS``, handle translation, sticky errors;
* ``memory_map``: a session's allocations and its quota, pointer checks;
* ``scheduler``: the hook every launch passes (compute shares, issue 5);
* ``sim_backend`` / ``sim_kernels``: the simulated GPU;
* ``cuda_backend`` / ``cuda_kernels``: real GPUs through cuda-python.
"""
