"""Options in ``[agent]``: GPU discovery and the management plane."""

from oslo_config import cfg

agent_group = cfg.OptGroup(
    "agent",
    title="Host agent",
    help="orionx-agent: discovers GPUs, registers with the controller, "
    "supervises GPU servers and routes guests to their vGPUs.",
)

agent_opts = [
    cfg.StrOpt(
        "sim_gpus",
        default="",
        help="Simulated GPUs to offer when NVML finds no NVIDIA driver, as "
        "COUNTxMEMORY_MB, for example 2x16384. Empty means none: a host "
        "without GPUs still runs the agent to reach remote GPUs.",
    ),
    cfg.IntOpt(
        "heartbeat_interval",
        default=10,
        min=1,
        help="Seconds between two heartbeats to the controller. Keep it well "
        "below [controller] heartbeat_timeout.",
    ),
]


def register_opts(conf):
    conf.register_group(agent_group)
    conf.register_opts(agent_opts, group=agent_group)


def list_opts():
    return {agent_group: agent_opts}
