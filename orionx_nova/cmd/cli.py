"""``orionx``: the pool from the command line, through the REST API.

    orionx gpu list
    orionx alloc create --vgpu 25:4096 --vgpu 25:4096 --wait
    orionx --format json alloc list --state queued
    orionx vgpu attach DOMAIN --compute-pct 25 --memory-mb 4096   (on the domain's host)
"""

import argparse
import getpass
import os
import sys

from orionx_nova.client import commands, formatting, vgpu
from orionx_nova.client import http as api_http


def _add_size_options(parser, compute_help, memory_help):
    """``--compute-pct PCT`` and ``--memory-mb MB``, the names the REST API
    and orionx-run use. ``--compute``/``--memory``, their spelling before
    this release, stay as hidden aliases for one release."""
    parser.add_argument("--compute-pct", type=int, metavar="PCT", help=compute_help)
    parser.add_argument("--memory-mb", type=int, metavar="MB", help=memory_help)
    parser.add_argument("--compute", dest="compute_pct", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--memory", dest="memory_mb", type=int, help=argparse.SUPPRESS)


def _add_alloc_parsers(sub):
    alloc = sub.add_parser("alloc", help="Allocations of vGPUs or whole native GPUs.")
    actions = alloc.add_subparsers(dest="action", metavar="ACTION", required=True)

    create = actions.add_parser("create", help="Request vGPUs (or whole native GPUs).")
    create.add_argument("--vgpu", action="append", metavar="COMPUTE_PCT:MEMORY_MB",
                        help="One vGPU, e.g. 25:4096; repeat for several.")
    _add_size_options(
        create, "compute_pct of each of --count identical vGPUs (with --memory-mb).",
        "memory_mb of each of --count identical vGPUs (with --compute-pct).")
    create.add_argument("--native", action="store_true", help="Whole GPUs (native pool).")
    create.add_argument("--count", type=int,
                        help="Number of identical vGPUs (--compute-pct/--memory-mb) or of whole "
                        "GPUs (--native); default 1.")
    create.add_argument("--mode", choices=["reserve", "acquire"], default="reserve")
    create.add_argument("--priority", type=int, default=50, help="0..100, higher first.")
    create.add_argument("--preemptible", action="store_true")
    create.add_argument("--can-preempt", action="store_true")
    create.add_argument("--requeue", action="store_true",
                        help="Go back to the queue when preempted.")
    create.add_argument("--host", help="Host where the consumer runs (its GPUs first).")
    create.add_argument("--consumer", help="Who uses it: instance UUID, VM or job name.")
    create.add_argument("--no-remote", action="store_true", help="Only GPUs on --host.")
    create.add_argument("--keep-bound", action="store_true",
                        help="Acquire mode: stay bound when the application's session ends "
                        "without unbinding; the caller unbinds.")
    create.add_argument("--no-queue", action="store_true",
                        help="Fail with 409 instead of waiting in the queue.")
    create.add_argument("--wait", action="store_true",
                        help="When queued, wait until placed, showing the queue position.")
    create.add_argument("--wait-timeout", type=float, default=3600, metavar="SECONDS")
    create.add_argument("--poll-interval", type=float, default=2, metavar="SECONDS")
    create.set_defaults(func=commands.alloc_create)

    listing = actions.add_parser("list", help="List allocations.")
    listing.add_argument("--state", choices=["queued", "active", "preempted", "degraded"])
    listing.add_argument("--consumer")
    listing.add_argument("--project", help="Only this project's (admins).")
    listing.set_defaults(func=commands.alloc_list)

    resize = actions.add_parser("resize", help="Change vGPU sizes in place.")
    resize.add_argument("uuid")
    _add_size_options(resize, "New compute share of every vGPU.",
                      "New memory quota of every vGPU.")
    resize.add_argument("--vgpu", action="append", metavar="INDEX=COMPUTE_PCT:MEMORY_MB",
                        help="New size of one vGPU, e.g. 0=50:8192.")
    resize.set_defaults(func=commands.alloc_resize)

    for name, func, text in (
        ("show", commands.alloc_show, "Show one allocation and its vGPUs."),
        ("delete", commands.alloc_delete, "Release an allocation."),
        ("bind", commands.alloc_bind, "Bind an acquire-mode allocation to GPUs."),
        ("unbind", commands.alloc_unbind, "Release the GPUs, keep the allocation."),
        ("preempt", commands.alloc_preempt, "Evict a running allocation (operators)."),
    ):
        parser = actions.add_parser(name, help=text)
        parser.add_argument("uuid")
        parser.set_defaults(func=func)


def _add_pool_parsers(sub):
    node = sub.add_parser("node", help="Hosts of the pool.")
    node_actions = node.add_subparsers(dest="action", metavar="ACTION", required=True)
    node_actions.add_parser("list", help="List hosts.").set_defaults(func=commands.node_list)

    gpu = sub.add_parser("gpu", help="Physical GPUs.")
    gpu_actions = gpu.add_subparsers(dest="action", metavar="ACTION", required=True)
    listing = gpu_actions.add_parser("list", help="List physical GPUs.")
    listing.add_argument("--node", help="Only GPUs of this host.")
    listing.add_argument("--pool", choices=["orionx", "native"])
    listing.set_defaults(func=commands.gpu_list)
    show = gpu_actions.add_parser("show", help="Show one GPU.")
    show.add_argument("uuid")
    show.set_defaults(func=commands.gpu_show)
    set_mode = gpu_actions.add_parser("set-mode", help="Move a GPU to the other pool (admin).")
    set_mode.add_argument("uuid")
    set_mode.add_argument("mode", choices=["native", "orionx"])
    set_mode.add_argument("--drain", action="store_true",
                          help="Stop new placements now and switch once the GPU is empty.")
    set_mode.set_defaults(func=commands.gpu_set_mode)

    queue = sub.add_parser("queue", help="The queue of waiting allocations.")
    queue_actions = queue.add_subparsers(dest="action", metavar="ACTION", required=True)
    queue_actions.add_parser("list", help="List queued requests in serving order.") \
        .set_defaults(func=commands.queue_list)

    event = sub.add_parser("event", help="Pool events.")
    event_actions = event.add_subparsers(dest="action", metavar="ACTION", required=True)
    listing = event_actions.add_parser("list", help="List recent events, newest first.")
    listing.add_argument("--level", choices=["info", "warning", "error"])
    listing.add_argument("--object-type", help="node, gpu, allocation, ...")
    listing.add_argument("--object-uuid")
    listing.add_argument("--limit", type=int, default=100)
    listing.set_defaults(func=commands.event_list)

    summary = sub.add_parser("summary", help="Pool totals and use.")
    summary.set_defaults(func=commands.summary_show)

    _add_user_parsers(sub)

    token = sub.add_parser("token", help="Bearer tokens (local auth).")
    token_actions = token.add_subparsers(dest="action", metavar="ACTION", required=True)
    issue = token_actions.add_parser(
        "issue", help="Get a token; the password comes from ORIONX_PASSWORD or a prompt.")
    issue.add_argument("name")
    issue.set_defaults(func=_token_issue)


def _add_user_parsers(sub):
    user = sub.add_parser("user", help="Local user accounts (admins; local auth).")
    actions = user.add_subparsers(dest="action", metavar="ACTION", required=True)
    actions.add_parser("list", help="List users.").set_defaults(func=commands.user_list)
    create = actions.add_parser(
        "create", help="Create a user; the password comes from ORIONX_NEW_PASSWORD or a prompt.")
    create.add_argument("name")
    create.add_argument("--role", required=True, choices=["viewer", "operator", "admin"])
    create.add_argument("--project", help="Project whose allocations the user works on.")
    create.set_defaults(func=_user_create)
    set_role = actions.add_parser("set-role", help="Change a user's role.")
    set_role.add_argument("name")
    set_role.add_argument("role", choices=["viewer", "operator", "admin"])
    set_role.set_defaults(func=commands.user_set_role)
    for name, func, text in (
        ("unlock", commands.user_unlock, "End a lockout after too many wrong passwords."),
        ("delete", commands.user_delete, "Delete a user and its tokens."),
    ):
        parser = actions.add_parser(name, help=text)
        parser.add_argument("name")
        parser.set_defaults(func=func)


def _user_create(api, args):
    password = os.environ.get("ORIONX_NEW_PASSWORD") or getpass.getpass(
        "Password of the new user %s: " % args.name)
    return commands.user_create(api, args, password)


def _add_vgpu_parsers(sub):
    parser = sub.add_parser("vgpu", help="vGPUs of this host's virsh-managed domains "
                            "(through this host's orionx-agent).")
    parser.add_argument("--agent-socket", default=os.environ.get(
        "ORIONX_AGENT_SOCKET", vgpu.DEFAULT_AGENT_SOCKET),
        help="The agent's admin socket (env ORIONX_AGENT_SOCKET, default %(default)s).")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    attach = actions.add_parser("attach", help="Give a domain vGPUs (devices and metadata "
                                "in its definition; live where the hypervisor allows).")
    attach.add_argument("domain", help="Domain name or UUID.")
    _add_size_options(attach, "compute_pct of each vGPU, 1-100 (required).",
                      "memory_mb of each vGPU (required).")
    attach.add_argument("--count", type=int, default=1, help="Number of vGPUs (default 1).")
    attach.add_argument("--mode", choices=["reserve", "acquire"], default="reserve",
                        help="reserve: bound while the domain runs; acquire: while a "
                        "program in it uses them.")
    attach.set_defaults(func=vgpu.vgpu_attach)
    detach = actions.add_parser("detach", help="Take a domain's vGPUs away and delete its "
                                "allocation.")
    detach.add_argument("domain", help="Domain name or UUID.")
    detach.set_defaults(func=vgpu.vgpu_detach)


def _token_issue(api, args):
    password = os.environ.get("ORIONX_PASSWORD") or getpass.getpass(
        "Password of %s: " % args.name)
    return commands.token_issue(api, args, password)


def build_parser():
    parser = argparse.ArgumentParser(prog="orionx", description="OrionX GPU pool client.")
    parser.add_argument("--url", default=os.environ.get("ORIONX_URL", api_http.DEFAULT_URL),
                        help="API endpoint (env ORIONX_URL, default %(default)s).")
    parser.add_argument("--token", default=os.environ.get("ORIONX_TOKEN"),
                        help="Bearer or Keystone token (env ORIONX_TOKEN).")
    parser.add_argument("--format", choices=["table", "json"], default="table")
    parser.add_argument("--timeout", type=float, default=api_http.DEFAULT_TIMEOUT_S,
                        metavar="SECONDS", help="Per-request timeout.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _add_pool_parsers(sub)
    _add_alloc_parsers(sub)
    _add_vgpu_parsers(sub)
    return parser


def main(argv=None):
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    api = api_http.ApiClient(args.url, token=args.token, timeout_s=args.timeout)
    try:
        data, render = args.func(api, args)
    except (api_http.ApiError, commands.UsageError, vgpu.AgentError, TimeoutError) as exc:
        print("orionx: %s" % exc, file=sys.stderr)
        return 2 if isinstance(exc, commands.UsageError) else 1
    except KeyboardInterrupt:
        # Interrupting --wait leaves the allocation queued; say so.
        print("orionx: interrupted; a queued allocation stays in the queue", file=sys.stderr)
        return 130
    try:
        print(formatting.as_json(data) if args.format == "json" else render(data))
        sys.stdout.flush()
    except BrokenPipeError:
        # `orionx ... | head` closed the pipe early: not an error. Point stdout
        # at devnull so the interpreter's final flush does not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


if __name__ == "__main__":
    sys.exit(main())
