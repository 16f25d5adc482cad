"""Options in ``[history]``: the usage samples behind the console's charts."""

from oslo_config import cfg

history_group = cfg.OptGroup(
    "history",
    title="Usage history",
    help="orionx-controller samples the use of every physical GPU and every "
    "bound vGPU; the operator console draws its charts from these samples.",
)

history_opts = [
    cfg.BoolOpt(
        "sampler_enabled",
        default=True,
        help="Whether this orionx-controller samples usage and checks alert "
        "rules. With several controllers on one database only the one that "
        "leads the background loops samples ([coordination] backend_url); "
        "without a coordination backend, leave it on for one of them: two "
        "samplers write every sample twice.",
    ),
    cfg.IntOpt(
        "sample_interval_s",
        default=60,
        min=1,
        help="Seconds between two samples. Each sample writes one row per "
        "GPU and one per bound vGPU.",
    ),
    cfg.IntOpt(
        "retention_s",
        default=24 * 3600,
        min=60,
        help="Seconds a sample is kept; older ones are deleted after each "
        "sample. The console's GPU page shows the last hour.",
    ),
]


def register_opts(conf):
    conf.register_group(history_group)
    conf.register_opts(history_opts, group=history_group)


def list_opts():
    return {history_group: history_opts}
