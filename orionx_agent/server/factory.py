"""Build a GPU server and its backend from ``[gpu_server]`` options."""

import os
import ssl

from oslo_log import log as logging

from orionx_agent import addresses
from orionx_agent.server.scheduler import ComputeScheduler
from orionx_agent.server.server import GpuServer

LOG = logging.getLogger(__name__)


def build_backend(group):
    """The backend ``group.backend`` names; ``auto`` picks cuda when it works."""
    if group.backend in ("cuda", "auto"):
        from orionx_agent.server import cuda_backend
        reason = cuda_backend.unavailable_reason()
        if reason is None:
            return cuda_backend.CudaGpu(group.gpu_index)
        if group.backend == "cuda":
            raise RuntimeError("[gpu_server] backend is cuda but %s: install cuda-python "
                               "and the NVIDIA driver, or set backend = sim" % reason)
        LOG.info("Using the sim backend: %s", reason)
    from orionx_agent.server.sim_backend import SimGpu
    return SimGpu(group.sim_memory_mb << 20, index=group.gpu_index,
                  ptx_instruction_budget=group.sim_ptx_instruction_budget)


def build_tls_context(group):
    if not group.tls_cert_file:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(group.tls_cert_file, group.tls_key_file)
    return context


def build_server(conf, backend=None):
    group = conf.gpu_server
    if not conf.session_secret:
        raise RuntimeError("[DEFAULT] session_secret is not set: GPU servers verify session "
                           "tokens with it; use the controller's value")
    unix_path = group.unix_socket_path or os.path.join(
        conf.state_dir, "gpu-server-%d.sock" % group.gpu_index)
    control_path = group.control_socket_path or os.path.join(
        conf.state_dir, "gpu-server-%d.control.sock" % group.gpu_index)
    os.makedirs(os.path.dirname(unix_path) or ".", exist_ok=True)
    os.makedirs(os.path.dirname(control_path) or ".", exist_ok=True)
    return GpuServer(
        backend or build_backend(group), conf.session_secret,
        unix_socket_path=unix_path,
        tcp_address=(addresses.parse_host_port(group.tcp_listen, "[gpu_server] tcp_listen")
                     if group.tcp_listen else None),
        tls_context=build_tls_context(group),
        shm_enabled=group.shm_enabled,
        shm_ring_bytes=group.shm_ring_mb << 20,
        scheduler=ComputeScheduler(group.compute_mode, group.share_window_ms),
        control_socket_path=control_path,
        physical_memory_bytes=group.physical_memory_mb << 20,
        oversub_ratio=group.memory_oversub_ratio,
        max_sessions_per_vgpu=group.max_sessions_per_vgpu,
        module_images_in_flight_bytes=group.module_images_in_flight_mb << 20)
