"""The controller's configuration: one module per option group.

Importing this package registers every group on ``CONF``; modules that need an
option import ``CONF`` from here and never register options themselves.
"""

from oslo_config import cfg

from orionx_nova.conf import (
    alerts,
    api,
    controller,
    coordination,
    database,
    default,
    history,
    placement,
    scheduler,
)

CONF = cfg.CONF

_GROUP_MODULES = (default, database, api, scheduler, controller, coordination, history, alerts,
                  placement)

for _module in _GROUP_MODULES:
    _module.register_opts(CONF)
