"""Overview: pool totals, use per pool, queue length, recent alerts."""

from orionx_nova.api import policy
from orionx_nova.conf import CONF
from orionx_nova.gui import identity
from orionx_nova.gui.blueprint import blueprint, render
from orionx_nova.objects import events, history, summary
from orionx_nova.policies import events as event_rules
from orionx_nova.policies import summary as summary_rules

RECENT_ALERTS = 10


def _measured_totals():
    """{"gpus", "measured_compute_pct", "measured_memory_mb"} summed over
    the GPUs whose agents report measurements, or None when none does."""
    points = history.latest_gpu_points(2 * CONF.history.sample_interval_s)
    measured = [p for p in points.values() if p["measured_memory_mb"] is not None]
    if not measured:
        return None
    return {
        "gpus": len(measured),
        "measured_compute_pct": sum(p["measured_compute_pct"] or 0 for p in measured),
        "measured_memory_mb": sum(p["measured_memory_mb"] for p in measured),
    }


@blueprint.get("/")
def overview():
    context = identity.current()
    policy.authorize(context, summary_rules.SHOW)
    alerts = []
    if policy.allowed(context, event_rules.LIST):
        alerts = events.list(kind_prefix="alert.", limit=RECENT_ALERTS,
                             project_id=policy.event_scope(context))
    return render("overview.html", totals=summary.get(), alerts=alerts,
                  measured=_measured_totals())
