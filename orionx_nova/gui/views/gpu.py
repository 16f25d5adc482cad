"""GPU detail: its slices, the vGPU sessions bound to it, its use over the
last hour; and moving it between the pools (admins)."""

import flask

from orionx_nova.api import policy
from orionx_nova.db import models
from orionx_nova.gui import charts, identity, visible
from orionx_nova.gui.blueprint import act, back, blueprint, render
from orionx_nova.objects import gpus, history
from orionx_nova.policies import gpus as gpu_rules

HOUR_S = 3600


def _charts(gpu, points, now):
    compute = charts.line_chart(
        points, [("allocated_compute_pct", "allocated", "allocated"),
                 ("measured_compute_pct", "measured", "measured")],
        y_max=100, now=now, span_s=HOUR_S, y_unit=" %")
    memory = charts.line_chart(
        points, [("allocated_memory_mb", "allocated", "allocated"),
                 ("measured_memory_mb", "measured", "measured")],
        y_max=gpu["capacity_memory_mb"], now=now, span_s=HOUR_S, y_unit=" MB")
    return compute, memory


@blueprint.get("/gpus/<uuid>")
def gpu_detail(uuid):
    context = identity.current()
    policy.authorize(context, gpu_rules.SHOW)
    gpu = visible.annotate_slices(gpus.get(uuid), visible.allocations_by_uuid(context))
    now = models.utcnow()
    points = history.gpu_series(uuid, since_s=HOUR_S, now=now)
    compute_chart, memory_chart = _charts(gpu, points, now)
    slice_series = history.vgpu_series_on_gpu(uuid, since_s=HOUR_S, now=now)
    latest = {v: s["points"][-1] for v, s in slice_series.items() if s["points"]}
    measured = any(p["measured_memory_mb"] is not None for p in points)
    return render("gpu.html", gpu=gpu, compute_chart=compute_chart,
                  memory_chart=memory_chart, samples=len(points), latest=latest,
                  measured=measured)


@blueprint.post("/gpus/<uuid>/mode")
def set_gpu_mode(uuid):
    policy.authorize(identity.current(), gpu_rules.SET_MODE)
    mode = flask.request.form.get("mode", "")
    drain = flask.request.form.get("drain") == "on"
    act(lambda: gpus.set_mode(uuid, mode, drain=drain),
        "GPU %s: asked to move to the %s pool%s." % (uuid, mode, " after draining" if drain
                                                     else ""))
    return back("ui.gpu_detail", uuid=uuid)
