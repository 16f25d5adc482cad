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
    cfg.IntOpt(
        "revocation_timeout_s",
        default=30,
        min=1,
        help="Seconds the capacity of a deleted, unbound or preempted "
        "allocation stays counted on its GPUs while a session of it may "
        "still run there. It is handed on earlier when the GPU's host "
        "reports no live session of the allocation, or is marked down.",
    ),
    cfg.IntOpt(
        "unbound_acquire_ttl_s",
        default=900,
        min=60,
        help="Seconds after which an unbound acquire-mode allocation made by "
        "orionx-run (unbind_on_session_end) with no session and no bind is "
        "deleted, with an event: its program was killed before it could "
        "delete it.",
    ),
]


def register_opts(conf):
    conf.register_group(controller_group)
    conf.register_opts(controller_opts, group=controller_group)


def list_opts():
    return {controller_group: controller_opts}
