"""The agent's and GPU server's configuration: one module per option group.

``[DEFAULT]`` options (state_dir, host, session_secret) are shared with the
controller and registered by :mod:`orionx_common.conf`; this package adds the
host-side groups to the same ``CONF``.
"""

from orionx_agent.conf import agent, gpu_server, libvirt
from orionx_common.conf import CONF

_GROUP_MODULES = (agent, gpu_server, libvirt)

for _module in _GROUP_MODULES:
    _module.register_opts(CONF)

__all__ = ["CONF"]
