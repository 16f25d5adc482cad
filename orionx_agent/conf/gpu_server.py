"""Options in ``[gpu_server]``: one orionx-gpu-server per physical GPU."""

from oslo_config import cfg

gpu_server_group = cfg.OptGroup(
    "gpu_server",
    title="GPU server",
    help="orionx-gpu-server: runs the calls of many sessions on one GPU and "
    "enforces each vGPU's memory quota and compute share.",
)

gpu_server_opts = [
    cfg.StrOpt(
        "backend",
        default="auto",
        choices=[
            ("auto", "cuda where NVML finds a GPU, sim otherwise"),
            ("cuda", "Real NVIDIA GPUs through cuda-python"),
            ("sim", "Simulated GPU: host-memory arena and numpy kernels"),
        ],
        help="Which backend executes device work.",
    ),
    cfg.StrOpt(
        "compute_mode",
        default="elastic",
        choices=[
            ("hard", "A session never gets more than its compute_pct of device time"),
            ("elastic", "Idle device time may be borrowed; under contention each "
             "session still gets its share"),
        ],
        help="How a vGPU's compute share is enforced.",
    ),
    cfg.IntOpt(
        "sim_memory_mb",
        default=16384,
        min=16,
        help="Device memory of the simulated GPU, in MB: the size of its host-memory "
        "arena. Pages are only committed as sessions write them.",
    ),
    cfg.IntOpt(
        "sim_ptx_instruction_budget",
        default=10_000_000_000,
        min=1000,
        help="Thread-instructions one PTX kernel launch may execute on the simulated "
        "GPU (threads times the instructions each runs) before it is stopped with "
        "CUDA_ERROR_LAUNCH_TIMEOUT, so that a kernel that never ends cannot hold the "
        "GPU. The default is minutes of simulated-GPU time.",
    ),
    cfg.StrOpt(
        "tls_cert_file",
        help="PEM certificate (chain) presented on tcp_listen. With tls_key_file set, "
        "TCP clients must connect with tls:HOST:PORT.",
    ),
    cfg.StrOpt(
        "tls_key_file",
        help="PEM private key of tls_cert_file.",
    ),
    cfg.BoolOpt(
        "shm_enabled",
        default=True,
        help="Offer shared memory to clients on the unix socket: bulk copies then "
        "move through a shared segment instead of the socket.",
    ),
    cfg.IntOpt(
        "shm_ring_mb",
        default=8,
        min=1,
        max=1024,
        help="Size in MB of each of the two rings (requests, replies) of a shared-memory "
        "session. Larger rings help bulk copies; each session maps 2 x this.",
    ),
    cfg.IntOpt(
        "share_window_ms",
        default=100,
        min=10,
        help="Length of the sliding window, in milliseconds, over which each "
        "session's device time is measured against its share.",
    ),
    cfg.IntOpt(
        "max_sessions_per_vgpu",
        default=64,
        min=1,
        help="Sessions one vGPU may have open on this GPU server at once, over "
        "every transport and route; the next HELLO is answered "
        "CUDA_ERROR_OUT_OF_MEMORY naming this option. They share the vGPU's "
        "memory quota and compute share whatever their number.",
    ),
    cfg.IntOpt(
        "module_images_in_flight_mb",
        default=256,
        min=1,
        help="Host memory, in MB, that module images being loaded "
        "(cuModuleLoadData) may take in the GPU server at once, over all "
        "sessions. A load waits up to 10 s for room, then fails with "
        "CUDA_ERROR_OUT_OF_MEMORY naming this option; an image larger than "
        "this fails at once.",
    ),
    cfg.IntOpt(
        "physical_memory_mb",
        default=0,
        min=0,
        help="Device memory, in MB, the GPU server may use for sessions' buffers; "
        "0 means all of the GPU's. The agent may change it at run time over the "
        "control socket (set_memory_limits).",
    ),
    cfg.FloatOpt(
        "memory_oversub_ratio",
        default=1.0,
        min=1.0,
        max=16.0,
        help="How far the sum of sessions' memory may exceed physical_memory_mb: "
        "buffers of idle sessions then move to host RAM and come back when used. "
        "1.0 disables oversubscription. Normally set by the controller through the "
        "agent (set_memory_limits).",
    ),
]


# Given per process by whoever starts one GPU server per GPU (the agent), so
# they are command-line options too.
gpu_server_cli_opts = [
    cfg.IntOpt(
        "gpu-index",
        default=0,
        min=0,
        help="Index of the physical GPU this server drives (the CUDA device ordinal "
        "on the cuda backend).",
    ),
    cfg.StrOpt(
        "unix-socket-path",
        default="",
        help="Unix socket on which local clients (and shared memory) are served. "
        "Empty means gpu-server-<gpu_index>.sock in [DEFAULT] state_dir.",
    ),
    cfg.StrOpt(
        "control-socket-path",
        default="",
        help="Unix socket (mode 0600) on which the host agent controls this server: "
        "resize, preempt, usage, memory limits and hand-over of guest connections. "
        "Empty means gpu-server-<gpu_index>.control.sock in [DEFAULT] state_dir.",
    ),
    cfg.StrOpt(
        "tcp-listen",
        default="",
        help="HOST:PORT on which remote clients are served over TCP (TLS when "
        "tls_cert_file is set). Empty disables TCP.",
    ),
]


def register_opts(conf):
    conf.register_group(gpu_server_group)
    conf.register_opts(gpu_server_opts, group=gpu_server_group)
    conf.register_cli_opts(gpu_server_cli_opts, group=gpu_server_group)


def list_opts():
    return {gpu_server_group: gpu_server_opts + gpu_server_cli_opts}
