"""Options in ``[placement]``: how the controller reaches Placement (the
auth, session and adapter options keystoneauth registers, as every
OpenStack service has them) and how it keeps Placement in step with the
pool."""

from keystoneauth1 import loading as ks_loading
from oslo_config import cfg

placement_group = cfg.OptGroup(
    "placement",
    title="Placement",
    help="Mirroring the pool into OpenStack Placement: GPU providers, sharing "
    "providers per pool and the controller's own allocations.",
)

sync_opts = [
    cfg.BoolOpt(
        "sync_enabled",
        default=False,
        help="Keep Placement in step with the pool from orionx-controller. "
        "Enable where Nova and Placement run; the auth options below must "
        "then reach Placement.",
    ),
    cfg.IntOpt(
        "sync_interval_s",
        default=60,
        min=1,
        help="Seconds between two full syncs even when nothing changed, so "
        "edits made in Placement by hand are undone.",
    ),
    cfg.FloatOpt(
        "change_poll_interval_s",
        default=2.0,
        min=0.1,
        help="Seconds between two cheap checks of whether the pool changed "
        "(GPUs, allocations, node states); a change starts a sync at once.",
    ),
    cfg.IntOpt(
        "generation_conflict_retries",
        default=5,
        min=0,
        help="How often a provider write that lost a generation race to "
        "another writer (Nova's resource tracker) is read again and retried.",
    ),
    cfg.BoolOpt(
        "share_remote_gpus",
        default=True,
        help="Offer every pool's GPUs to all hosts with an agent through one "
        "sharing provider per pool (remote resource classes), in an "
        "aggregate with those hosts' compute-node providers.",
    ),
    cfg.StrOpt(
        "consumer_project_id",
        default="orionx",
        help="Project recorded in Placement for controller allocations made "
        "without a project (virsh guests created by an operator).",
    ),
]

# The same auth plugin options a [placement] section has in nova.conf.
_AUTH_PLUGIN_FOR_SAMPLE = "password"
# Used when [placement] leaves service_type or valid_interfaces unset (the
# client passes them to keystoneauth, and the sample shows them).
SERVICE_TYPE = "placement"
VALID_INTERFACES = ["internal", "public"]


def register_opts(conf):
    conf.register_group(placement_group)
    conf.register_opts(sync_opts, group=placement_group)
    ks_loading.register_session_conf_options(conf, placement_group.name)
    ks_loading.register_auth_conf_options(conf, placement_group.name)
    ks_loading.register_adapter_conf_options(
        conf, placement_group.name, include_deprecated=False)


def _keystoneauth_opts():
    opts = (
        ks_loading.get_session_conf_options()
        + ks_loading.get_auth_common_conf_options()
        + ks_loading.get_auth_plugin_conf_options(_AUTH_PLUGIN_FOR_SAMPLE)
        + ks_loading.get_adapter_conf_options(include_deprecated=False)
    )
    cfg.set_defaults(opts, service_type=SERVICE_TYPE, valid_interfaces=VALID_INTERFACES)
    unique = {}
    for opt in opts:
        unique.setdefault(opt.dest, opt)
    return list(unique.values())


def list_opts():
    return {placement_group: sync_opts + _keystoneauth_opts()}
