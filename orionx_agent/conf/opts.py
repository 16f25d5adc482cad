"""The ``oslo.config.opts`` entry point of the host-side options."""

from orionx_agent.conf import _GROUP_MODULES
from orionx_common.conf import merge_group_opts


def list_opts():
    return merge_group_opts(_GROUP_MODULES)
