"""orionx-agent: the host agent, one job per module.

* :mod:`discovery` -- which GPUs this host has (NVML, or simulated ones);
* :mod:`supervisor` -- one orionx-gpu-server process per pooled GPU, restarted
  with backoff when it dies;
* :mod:`management` -- register, heartbeat and report sessions to the
  controller, retrying while it is away;
* :mod:`rpc_endpoint` -- the controller's casts (preempt, resize, set_gpu_mode);
* :mod:`gateway` -- listeners for guests: authenticate, then route;
* :mod:`hello` -- read a guest's first frame without consuming it;
* :mod:`relay` -- copy bytes between a guest and a remote host's agent;
* :mod:`locator` -- where a GPU lives: here, or which host's gateway;
* :mod:`service` -- starts and stops all of the above.
"""
