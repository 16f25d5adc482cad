"""Options in ``[libvirt]``: the agent's support of virsh-managed KVM guests
(domain events, ``orionx vgpu attach``) and the pool API it uses for them."""

from oslo_config import cfg

libvirt_group = cfg.OptGroup(
    "libvirt",
    title="KVM guests through libvirt",
    help="orionx-agent follows libvirt domain events, serves VMs over vsock, "
    "virtio-serial and ivshmem, and attaches vGPUs to domains (orionx vgpu "
    "attach).",
)

libvirt_opts = [
    cfg.StrOpt(
        "connection_uri",
        default="",
        help="libvirt URI of this host's hypervisor, e.g. qemu:///system. Empty "
        "disables VM support: no domain events, no orionx vgpu attach.",
    ),
    cfg.URIOpt(
        "api_url",
        default="http://127.0.0.1:8700",
        help="URL of orionx-api, where the agent creates, binds, releases and "
        "deletes the allocations of domains and gets their session tokens.",
    ),
    cfg.StrOpt(
        "api_user",
        help="orionx-api account (admin role, [api] auth_strategy = local) the "
        "agent logs in with. Unset with auth_strategy = noauth.",
    ),
    cfg.StrOpt(
        "api_password",
        secret=True,
        help="Password of api_user.",
    ),
    cfg.StrOpt(
        "channel_dir",
        default="/var/lib/libvirt/qemu/orionx",
        help="Directory of the host sockets of domains' virtio-serial agent "
        "channels; the same as [orionx] channel_dir of the Nova driver.",
    ),
    cfg.StrOpt(
        "transport",
        default="auto",
        choices=["auto", "vsock", "serial"],
        help="Link device orionx vgpu attach adds: vsock where the host has "
        "/dev/vhost-vsock (auto), or always one of them.",
    ),
    cfg.IntOpt(
        "shmem_size_mb",
        default=64,
        min=0,
        help="Size of the ivshmem region for bulk data that orionx vgpu attach "
        "adds, in MB, a power of two; 0 adds none (bulk data then goes over the "
        "link).",
    ),
    cfg.StrOpt(
        "admin_socket_path",
        default="",
        help="Unix socket (root only) on which the agent takes orionx vgpu "
        "attach and detach. Empty means agent-admin.sock in [DEFAULT] state_dir.",
    ),
]


def register_opts(conf):
    conf.register_group(libvirt_group)
    conf.register_opts(libvirt_opts, group=libvirt_group)


def list_opts():
    return {libvirt_group: libvirt_opts}
