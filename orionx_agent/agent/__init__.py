"""orionx-agent: the host agent, one job per module.

* :mod:`discovery` -- which GPUs this host has (NVML, or simulated ones);
* :mod:`supervisor` -- one orionx-gpu-server process per pooled GPU, restarted
  with backoff when it dies;
* :mod:`management` -- register, heartbeat and report sessions to the
  controller, retrying while it is away;
* :mod:`rpc_endpoint` -- the controller's casts (preempt, resize, set_gpu_mode);
* :mod:`gateway` -- listeners for guests: authenticate, then route;
* :mod:`relay` -- copy bytes between a guest and a remote host's agent;
* :mod:`locator` -- where a GPU lives: here, or which host's gateway;
* :mod:`vm_channels` -- where KVM guests reach the agent (vsock, serial)
  and :mod:`vm_link_host`, the agent's half of their link;
* :mod:`service` -- starts and stops all of the above.

HELLO, the first frame of every session, is read by ``orionx_agent.hello``
(shared with the GPU server), and every listener's accept loop is
``orionx_agent.listeners``.
"""
