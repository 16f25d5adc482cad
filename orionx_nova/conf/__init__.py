"""The controller's configuration: one module per option group.

Importing this package registers every group on ``CONF`` (``[DEFAULT]``
comes from :mod:`orionx_common.conf`); modules that need an option import
``CONF`` from here and never register options themselves.
"""

from orionx_common.conf import CONF, default
from orionx_nova.conf import (
    alerts,
    api,
    controller,
    coordination,
    database,
    history,
    placement,
    scheduler,
)

_CONTROLLER_GROUP_MODULES = (database, api, scheduler, controller, coordination, history, alerts,
                             placement)

for _module in _CONTROLLER_GROUP_MODULES:
    _module.register_opts(CONF)

# What the controller's sample documents: its groups and [DEFAULT].
_GROUP_MODULES = (default,) + _CONTROLLER_GROUP_MODULES

__all__ = ["CONF"]
