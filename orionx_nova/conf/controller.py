"""Options in ``[controller]``: the controller's background loops."""

from oslo_config import cfg

controller_group = cfg.OptGroup(
    "controller",
    title="Controller",
    help="Background work of orionx-controller: node liveness and the queue.",
)

controller_opts = [
    cfg.IntOpt(
        "heartbeat_timeout",
        default=30,
        min=1,
        help="Seconds without a heartbeat after which a node is marked down: "
        "its GPUs take no new work, its acquire-mode bindings are released "
        "and its reserve-mode allocations are marked degraded.",
    ),
    cfg.IntOpt(
        "reap_interval",
        default=5,
        min=1,
        help="Seconds between two checks for nodes that missed heartbeats.",
    ),
]


def register_opts(conf):
    conf.register_group(controller_group)
    conf.register_opts(controller_opts, group=controller_group)


def list_opts():
    return {controller_group: controller_opts}
