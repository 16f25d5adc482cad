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
        "share_window_ms",
        default=100,
        min=10,
        help="Length of the sliding window, in milliseconds, over which each "
        "session's device time is measured against its share.",
    ),
]


def register_opts(conf):
    conf.register_group(gpu_server_group)
    conf.register_opts(gpu_server_opts, group=gpu_server_group)


def list_opts():
    return {gpu_server_group: gpu_server_opts}
