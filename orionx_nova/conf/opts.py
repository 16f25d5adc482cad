"""The ``oslo.config.opts`` entry point of the controller's options.

oslo-config-generator calls :func:`list_opts` to write
``etc/orionx/orionx.conf.sample``.
"""

from orionx_common.conf import merge_group_opts
from orionx_nova.conf import _GROUP_MODULES


def list_opts():
    return merge_group_opts(_GROUP_MODULES)
