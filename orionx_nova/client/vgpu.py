"""``orionx vgpu attach|detach``: vGPUs for this host's virsh-managed
domains, done by this host's orionx-agent (it owns the libvirt connection
and the VMs' channels) through its admin socket, not the REST API."""

import json

from guest_runtime.endpoints import connect_unix
from orionx_nova.client import commands, formatting

DEFAULT_AGENT_SOCKET = "/var/lib/orionx/agent-admin.sock"
AGENT_TIMEOUT_S = 120


class AgentError(Exception):
    """The agent refused, or cannot be reached; the message says why."""


def call_agent(socket_path, request, timeout_s=AGENT_TIMEOUT_S):
    try:
        sock = connect_unix(socket_path, timeout_s)
    except OSError as exc:
        raise AgentError("cannot reach orionx-agent at %s (%s): run this on the domain's host "
                         "as root, with [libvirt] connection_uri set in the agent's "
                         "configuration, or pass --agent-socket" % (socket_path, exc)) from None
    try:
        sock.sendall(json.dumps(request).encode("utf-8") + b"\n")
        line = sock.makefile("rb").readline()
    except OSError as exc:
        raise AgentError("orionx-agent at %s did not answer (%s); see its log"
                         % (socket_path, exc)) from None
    finally:
        sock.close()
    try:
        answer = json.loads(line)
    except ValueError:
        raise AgentError("orionx-agent at %s answered no JSON" % socket_path) from None
    if not answer.get("ok"):
        raise AgentError(answer.get("error") or "the agent refused without a reason")
    return answer["result"]


def vgpu_attach(_api, args):
    if args.compute_pct is None or args.memory_mb is None:
        raise commands.UsageError("give --compute-pct PCT and --memory-mb MB: the size of "
                                  "each of the domain's vGPUs")
    result = call_agent(args.agent_socket, {
        "op": "attach", "domain": args.domain, "compute_pct": args.compute_pct,
        "memory_mb": args.memory_mb, "count": args.count, "mode": args.mode})
    return result, formatting.fields


def vgpu_detach(_api, args):
    result = call_agent(args.agent_socket, {"op": "detach", "domain": args.domain})
    return result, formatting.fields
