"""Options in ``[scheduler]``: how vGPUs are placed on physical GPUs."""

from oslo_config import cfg

scheduler_group = cfg.OptGroup(
    "scheduler",
    title="Pool scheduler",
    help="Placement of vGPUs on physical GPUs, the queue and preemption.",
)

scheduler_opts = [
    cfg.StrOpt(
        "policy",
        default="binpack",
        choices=[
            ("binpack", "Fill the busiest GPU that fits first, keeping whole GPUs free"),
            ("spread", "Use the least busy GPU first, spreading load"),
        ],
        help="Order among GPUs of equal locality. GPUs on the consumer's own "
        "host always come before remote ones.",
    ),
    cfg.BoolOpt(
        "strict_queue",
        default=False,
        help="Serve queued requests strictly in order of priority and age. "
        "When false, a request further back may start if it fits while those "
        "ahead of it still do not (backfill).",
    ),
    cfg.IntOpt(
        "claim_retries",
        default=10,
        min=1,
        help="How often a claim that lost a race for a GPU (its generation "
        "changed) is retried before the request fails with a conflict.",
    ),
]


def register_opts(conf):
    conf.register_group(scheduler_group)
    conf.register_opts(scheduler_opts, group=scheduler_group)


def list_opts():
    return {scheduler_group: scheduler_opts}
