"""The options every OrionX service shares: ``[DEFAULT]`` on the process's
``CONF``. Each side registers its own groups on the same object
(:mod:`orionx_nova.conf`, :mod:`orionx_agent.conf`).
"""

from oslo_config import cfg

from orionx_common.conf import default

CONF = cfg.CONF

default.register_opts(CONF)


def merge_group_opts(modules):
    """Merge the ``{group: [opts]}`` of several conf modules into the
    ``[(group, [opts])]`` list that oslo-config-generator expects."""
    merged = {}
    for module in modules:
        for group, opts in module.list_opts().items():
            merged.setdefault(group, []).extend(opts)
    return list(merged.items())
