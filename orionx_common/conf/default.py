"""Options in ``[DEFAULT]`` shared by every OrionX service."""

import socket

from oslo_config import cfg

# state_dir can also be given on the command line (--state-dir) of every
# service, so one machine can run several throwaway pools.
cli_opts = [
    cfg.StrOpt(
        "state-dir",
        default="/var/lib/orionx",
        help="Directory where the services keep their state: the SQLite "
        "database of the all-in-one deployment, unix sockets and logs. "
        "It is created on first use.",
    ),
]

default_opts = [
    cfg.StrOpt(
        "host",
        default=socket.gethostname(),
        sample_default="<hostname>",
        help="Name of this host as the pool knows it. For hosts that run "
        "nova-compute it must match the hypervisor hostname Nova reports.",
    ),
    cfg.StrOpt(
        "session_secret",
        secret=True,
        help="Shared secret with which the controller signs data-plane session "
        "tokens (HMAC-SHA256) and GPU servers verify them. Every controller "
        "and agent of one pool must use the same value. When unset, the "
        "all-in-one deployment generates one in the state directory; other "
        "deployments refuse to start.",
    ),
]


def register_opts(conf):
    conf.register_cli_opts(cli_opts)
    conf.register_opts(default_opts)


def list_opts():
    return {"DEFAULT": cli_opts + default_opts}
