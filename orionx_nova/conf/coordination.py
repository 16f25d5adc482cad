"""Options in ``[coordination]``: which controller runs the background loops."""

from oslo_config import cfg

coordination_group = cfg.OptGroup(
    "coordination",
    title="Coordination of several controllers",
    help="Controllers sharing one database all answer agents, but only one "
    "at a time runs the background loops (marking silent nodes down, serving "
    "the queue, sampling usage history and checking alerts, syncing "
    "Placement): the one holding a lock in a tooz backend.",
)

coordination_opts = [
    cfg.StrOpt(
        "backend_url",
        secret=True,  # it may carry a password
        help="The tooz backend that elects the controller running the "
        "background loops, e.g. postgresql://orionx:PASSWORD@db/orionx (the "
        "controllers' own PostgreSQL), mysql://orionx:PASSWORD@db/orionx, "
        "redis://redis:6379 or etcd3+http://etcd:2379. Unset: this "
        "controller runs them, which is right for a single controller and "
        "the all-in-one pool.",
    ),
    cfg.FloatOpt(
        "election_interval_s",
        default=5.0,
        min=0.1,
        help="Seconds between two attempts of a standby controller to take "
        "the lead, and between two checks by the leader that it still holds "
        "the lock. A leader that dies is replaced within about this long "
        "(with Redis or etcd, after its lock expires).",
    ),
]


def register_opts(conf):
    conf.register_group(coordination_group)
    conf.register_opts(coordination_opts, group=coordination_group)


def list_opts():
    return {coordination_group: coordination_opts}
