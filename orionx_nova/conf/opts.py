"""The ``oslo.config.opts`` entry point of the controller's options.

oslo-config-generator calls :func:`list_opts` to write
``etc/orionx/orionx.conf.sample``.
"""

from orionx_nova.conf import _GROUP_MODULES


def merge_group_opts(modules):
    """Merge the ``{group: [opts]}`` of several conf modules into the
    ``[(group, [opts])]`` list that oslo-config-generator expects."""
    merged = {}
    for module in modules:
        for group, opts in module.list_opts().items():
            merged.setdefault(group, []).extend(opts)
    return list(merged.items())


def list_opts():
    return merge_group_opts(_GROUP_MODULES)
