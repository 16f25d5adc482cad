"""``/metrics``: the pool in Prometheus' text format.

Public like ``/healthz`` (scrapers rarely carry tokens); restrict it by
network or with the front proxy when pool sizes are sensitive.
"""

import flask
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from orionx_nova.metrics import collector

blueprint = flask.Blueprint("metrics", __name__)

_registry = CollectorRegistry(auto_describe=False)
_registry.register(collector.PoolCollector())


@blueprint.get("/metrics")
def show_metrics():
    return flask.Response(generate_latest(_registry), mimetype=None,
                          headers={"Content-Type": CONTENT_TYPE_LATEST})
