"""Options of the OrionX driver in nova.conf, group ``[orionx]``.

Registered on Nova's configuration only when the driver is imported. The
driver never imports the controller's configuration (``orionx_nova.conf``):
both define ``[DEFAULT] host`` and ``[database]``, and one process cannot
hold both definitions.
"""

from oslo_config import cfg

orionx_group = cfg.OptGroup(
    "orionx",
    title="OrionX pool",
    help="How nova-compute's OrionX driver reaches the pool and what it adds "
    "to each guest.",
)

orionx_opts = [
    cfg.URIOpt(
        "api_url",
        default="http://127.0.0.1:8700",
        help="URL of orionx-api, where the driver binds and releases the vGPUs "
        "of instances and reads this host's GPUs.",
    ),
    cfg.StrOpt(
        "api_user",
        help="orionx-api account (admin role, [api] auth_strategy = local) the "
        "driver logs in with; a new token is fetched when one expires. Unset "
        "with auth_strategy = noauth.",
    ),
    cfg.StrOpt(
        "api_password",
        secret=True,
        help="Password of api_user.",
    ),
    cfg.IntOpt(
        "api_timeout_s",
        default=30,
        min=1,
        help="Seconds to wait for orionx-api before a spawn fails.",
    ),
    cfg.StrOpt(
        "channel_dir",
        default="/var/lib/libvirt/qemu/orionx",
        help="Directory of the host sockets of guests' virtio-serial agent "
        "channels (used where the host has no /dev/vhost-vsock). "
        "orionx-agent must watch the same directory.",
    ),
]


def register_opts(conf):
    conf.register_group(orionx_group)
    conf.register_opts(orionx_opts, group=orionx_group)


def list_opts():
    """For oslo-config-generator --namespace orionx.nova (nova.conf samples)."""
    return [(orionx_group, orionx_opts)]
