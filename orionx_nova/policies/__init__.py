"""Default oslo.policy rules of the REST API, one module per resource.

:func:`list_rules` is the ``oslo.policy.policies`` entry point that
oslopolicy-sample-generator reads to write ``etc/orionx/policy.yaml.sample``.
"""

import itertools

from orionx_nova.policies import (
    allocations,
    base,
    events,
    gpus,
    nodes,
    queue,
    summary,
    users,
)


def list_rules():
    return list(
        itertools.chain(
            base.list_rules(),
            nodes.list_rules(),
            gpus.list_rules(),
            allocations.list_rules(),
            queue.list_rules(),
            events.list_rules(),
            summary.list_rules(),
            users.list_rules(),
        )
    )
