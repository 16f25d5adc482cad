"""Options in ``[alerts]``: the rules orionx-controller checks and where it
sends what they raise."""

from oslo_config import cfg

alerts_group = cfg.OptGroup(
    "alerts",
    title="Alerts",
    help="Rules checked by orionx-controller after every usage sample. A "
    "rule that fires records an event of kind alert.<rule> (shown on the "
    "console) and, when webhook_url is set, POSTs it as JSON there.",
)

alerts_opts = [
    cfg.IntOpt(
        "gpu_memory_used_pct",
        default=90,
        min=0,
        max=100,
        help="Warn when a GPU's memory in use (measured when its agent "
        "reports it, else allocated) is above this percent of its memory "
        "capacity. 0 turns the rule off.",
    ),
    cfg.BoolOpt(
        "node_down",
        default=True,
        help="Raise an error alert for every node that is down.",
    ),
    cfg.IntOpt(
        "queue_wait_s",
        default=600,
        min=0,
        help="Warn when an allocation has waited in the queue longer than "
        "this many seconds. 0 turns the rule off.",
    ),
    cfg.IntOpt(
        "gpu_server_restarts",
        default=3,
        min=0,
        help="Raise an error alert when a GPU's server exited this many "
        "times or more within gpu_server_restarts_window_s (agents report "
        "each exit; the controller records it as a server_exited event). 0 "
        "turns the rule off.",
    ),
    cfg.IntOpt(
        "gpu_server_restarts_window_s",
        default=3600,
        min=60,
        help="Seconds over which GPU server exits are counted for the "
        "gpu_server_restarts rule.",
    ),
    cfg.URIOpt(
        "webhook_url",
        schemes=["http", "https"],
        help="POST every alert as a JSON object to this URL. Unset: alerts "
        "are only recorded as events.",
    ),
    cfg.FloatOpt(
        "webhook_timeout_s",
        default=5.0,
        min=0.1,
        help="Seconds to wait for the webhook to answer; a failure is logged "
        "and the alert stays recorded.",
    ),
    cfg.IntOpt(
        "cooldown_s",
        default=900,
        min=0,
        help="Seconds during which the same rule does not fire again for the "
        "same object, so a lasting condition is one alert, not one per check.",
    ),
]


def register_opts(conf):
    conf.register_group(alerts_group)
    conf.register_opts(alerts_opts, group=alerts_group)


def list_opts():
    return {alerts_group: alerts_opts}
