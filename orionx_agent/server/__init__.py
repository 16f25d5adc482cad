"""orionx-gpu-server: one process per physical GPU, serving many sessions.

Layout, one job per module:

* ``server``: its listeners (unix, TCP, TLS; accept loops from
  ``orionx_agent.listeners``) and the session registry;
* ``session``: one client's session: frame loop, dispatch derived from
  ``guest_runtime.protocol.OPS``, handle translation, sticky errors;
* ``shm_segment``: the server's side of SHM_ATTACH (segment, doorbells);
* ``memory_map``: a session's allocations and its quota, pointer checks;
* ``scheduler``: compute shares: the gate every launch passes (sliding
  window, ``hard``/``elastic``);
* ``device_memory``: device memory of all sessions, oversubscribed into
  host RAM (eviction and restore of whole buffers);
* ``control`` / ``control_server``: the host agent's control channel
  (client, listener): resize, preempt, usage, memory limits, hand-over;
* ``backend``: what a session asks of a backend;
* ``sim_backend`` / ``sim_kernels``: the simulated GPU;
* ``cuda_backend`` / ``cuda_kernels``: real GPUs through cuda-python;
  ``cuda_timing`` (kernel time from CUDA events) and ``cuda_memory``
  (evictable buffers through virtual memory management);
* ``factory``: a server and its backend from ``[gpu_server]`` options.

The wire protocol's table lives in ``guest_runtime.protocol`` (the guest
imports it too) and is described in ``docs/protocol.md``; the server's side
of its framing is ``orionx_agent.frames``, HELLO's reader
``orionx_agent.hello`` and the accept loop ``orionx_agent.listeners``.
"""
