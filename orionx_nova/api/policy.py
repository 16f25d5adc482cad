"""The API's oslo.policy enforcer and the checks handlers call.

Defaults come from :mod:`orionx_nova.policies`; an operator's policy.yaml
(``[oslo_policy] policy_file``) overrides any of them.
"""

import threading

from oslo_log import log as logging
from oslo_policy import policy as oslo_policy

from orionx_nova import exception, policies
from orionx_nova.conf import CONF
from orionx_nova.policies import allocations as allocation_policies

LOG = logging.getLogger(__name__)

_lock = threading.Lock()
_enforcer = None


def get_enforcer():
    global _enforcer
    with _lock:
        if _enforcer is None:
            enforcer = oslo_policy.Enforcer(CONF)
            enforcer.register_defaults(policies.list_rules())
            enforcer.load_rules()
            _enforcer = enforcer
        return _enforcer


def reset():
    """Forget the enforcer (tests, and after the policy file changed)."""
    global _enforcer
    with _lock:
        if _enforcer is not None:
            _enforcer.clear()
        _enforcer = None


def _target(context, target):
    merged = {"project_id": context.project_id, "user_id": context.user_id}
    merged.update(target or {})
    return merged


def authorize(context, rule, target=None):
    """Raise :class:`Forbidden` unless ``context`` passes ``rule``."""
    allowed = get_enforcer().authorize(rule, _target(context, target), context,
                                       do_raise=False)
    if not allowed:
        LOG.info("Policy %s refused user %s (roles %s, project %s)",
                 rule, context.user_id, ",".join(context.roles), context.project_id)
        raise exception.Forbidden(
            "Policy %s does not allow roles [%s]; ask a pool admin for a role "
            "that does" % (rule, ", ".join(context.roles) or "none"))


def allowed(context, rule, target=None):
    """True when ``context`` passes ``rule``; never raises."""
    return bool(get_enforcer().authorize(rule, _target(context, target), context,
                                         do_raise=False))


def event_scope(context):
    """The project whose allocation events ``context`` may read besides the
    pool's own (nodes, GPUs): None for every project; "" for a caller
    without a project, who reads the pool's events only."""
    if allowed(context, allocation_policies.ALL_PROJECTS):
        return None
    return context.project_id or ""


def project_scope(context):
    """The project whose allocations ``context`` may see: None (every project)
    for callers that pass ``all_projects``, else the caller's own project."""
    if allowed(context, allocation_policies.ALL_PROJECTS):
        return None
    if not context.project_id:
        raise exception.Forbidden(
            "User %s has no project, so it can see no allocations; ask a pool "
            "admin to give it one (orionx-manage user create --project)" % context.user_id)
    return context.project_id
