"""One module per REST resource. Each is thin: parse and check the request,
check policy, call the domain object in :mod:`orionx_nova.objects`, answer."""

from orionx_nova.api.handlers import (
    allocations,
    auth_tokens,
    events,
    gpus,
    metrics,
    nodes,
    queue,
    sessions,
    summary,
    users,
)

BLUEPRINTS = (
    nodes.blueprint,
    gpus.blueprint,
    allocations.blueprint,
    sessions.blueprint,
    queue.blueprint,
    events.blueprint,
    summary.blueprint,
    auth_tokens.blueprint,
    users.blueprint,
    metrics.blueprint,
)
