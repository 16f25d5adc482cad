"""Management-plane messaging helpers over oslo.messaging.

Agents and controllers talk RPC on ``[DEFAULT] transport_url`` (RabbitMQ in
production, ``fake://`` inside the all-in-one process).
"""

import oslo_messaging as messaging
from oslo_config import cfg
from oslo_log import log as logging

from orionx_common.conf import CONF

LOG = logging.getLogger(__name__)

CONTROL_EXCHANGE = "orionx"

_transport = None


def _register_transport_opts(conf):
    # oslo.messaging registers transport_url only inside get_transport();
    # registering its public option list lets us ask whether it is set.
    # Defaults first: list_opts() hands out copies, and a copy registered
    # with another default than the library's own options is a duplicate.
    from oslo_messaging import opts

    messaging.set_transport_defaults(control_exchange=CONTROL_EXCHANGE)
    for group, options in opts.list_opts():
        if group is None:
            conf.register_opts(options)


def transport_configured(conf=CONF):
    """True when ``[DEFAULT] transport_url`` was set by the operator."""
    _register_transport_opts(conf)
    # oslo.messaging defaults to "rabbit://" (a broker on localhost); only a
    # value the operator set means there are agents to talk to.
    location = conf.get_location("transport_url")
    return bool(conf.transport_url) and location.location != cfg.Locations.opt_default


def get_transport(conf=CONF):
    """The process's RPC transport, created on first use."""
    global _transport
    if _transport is None:
        _register_transport_opts(conf)
        _transport = messaging.get_rpc_transport(conf, url=conf.transport_url)
    return _transport


def set_transport(transport):
    """Use ``transport`` (tests, the all-in-one process); None forgets it."""
    global _transport
    _transport = transport


def get_rpc_client(target, conf=CONF):
    return messaging.get_rpc_client(get_transport(conf), target)


def get_rpc_server(target, endpoints, conf=CONF):
    return messaging.get_rpc_server(get_transport(conf), target, endpoints, executor="threading")
