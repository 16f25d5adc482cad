"""orionx-run: run a program with its CUDA calls served by OrionX.

    orionx-run --compute-pct 25 --memory-mb 4096 [--count N] [--priority P]
               [--controller URL] [--host H] -- CMD ...
    orionx-run --allocation UUID [--controller URL] -- CMD ...
    orionx-run [--endpoint E] [--token T] [--transport X] -- CMD ...

With ``--compute-pct``/``--memory-mb`` an acquire-mode allocation of ``--count``
vGPUs is created, CMD runs on it (binding when it creates its first
context, queueing while the pool is full) and the allocation is deleted
when CMD ends, however it ends. With ``--allocation`` an existing one is
used and unbound afterwards. With an endpoint and token CMD is exec'd
straight onto that GPU server. ``--compute``/``--memory``, the flags'
spelling before the names settled, still work for one release (hidden).

CMD runs with the runtime's settings in its environment and with the shim
directory first on PYTHONPATH, so that ``from cuda.bindings import driver``
(or ``import cuda.bindings.driver``) gets ``guest_runtime.cuda`` in that
process only; site-packages stays untouched.
"""

import argparse
import os
import signal
import socket
import subprocess
import sys

SHIM_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "shim")


def build_environment(base, endpoint=None, token=None, transport=None, tls_ca_file=None,
                      controller=None, allocation=None, host=None):
    """``base`` plus the variables that point CMD at OrionX and the shim."""
    env = dict(base)
    for name, value in (("ORIONX_ENDPOINT", endpoint), ("ORIONX_TOKEN", token),
                        ("ORIONX_TRANSPORT", transport), ("ORIONX_TLS_CA_FILE", tls_ca_file),
                        ("ORIONX_CONTROLLER", controller), ("ORIONX_ALLOCATION", allocation),
                        ("ORIONX_HOST", host)):
        if value:
            env[name] = value
    # guest_runtime itself must stay importable from the shim, wherever it lives.
    package_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    paths = [SHIM_DIR, package_root] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep)
                                        if p]
    env["PYTHONPATH"] = os.pathsep.join(paths)
    return env


def _parser():
    parser = argparse.ArgumentParser(
        prog="orionx-run", description="Run CMD on OrionX vGPUs.",
        usage="orionx-run [--compute-pct PCT --memory-mb MB [--count N] [--priority P] | "
              "--allocation UUID | --endpoint E --token T] [--controller URL] -- CMD [ARG...]")
    parser.add_argument("--compute-pct", type=int, metavar="PCT",
                        help="compute share of each vGPU, 1-100 %%")
    parser.add_argument("--memory-mb", type=int, metavar="MB",
                        help="memory of each vGPU in MB")
    # The spelling before one name per quantity; hidden, kept for one release.
    parser.add_argument("--compute", dest="compute_pct", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--memory", dest="memory_mb", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--count", type=int, default=1, help="number of vGPUs (default 1)")
    parser.add_argument("--priority", type=int, help="queue and preemption priority, 0-100")
    parser.add_argument("--preemptible", action="store_true",
                        help="higher-priority work may evict this one")
    parser.add_argument("--can-preempt", action="store_true",
                        help="may evict lower-priority preemptible work to start")
    parser.add_argument("--allocation", help="run on this existing acquire-mode allocation")
    parser.add_argument("--controller", help="controller REST API URL (default "
                        "$ORIONX_CONTROLLER)")
    parser.add_argument("--host", help="the host this runs on, as the pool knows it "
                        "(default $ORIONX_HOST, else this machine's hostname)")
    parser.add_argument("--endpoint", help="unix:PATH, tcp:HOST:PORT or tls:HOST:PORT "
                        "(comma-separated; default $ORIONX_ENDPOINT)")
    parser.add_argument("--token", help="session token (default $ORIONX_TOKEN)")
    parser.add_argument("--transport", choices=("auto", "shm", "unix", "tcp", "tls"),
                        help="force one transport (default: the fastest offered)")
    parser.add_argument("--tls-ca-file", help="CA bundle for tls: endpoints")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    return parser


def _allocation_body(args, host):
    body = {"mode": "acquire", "allow_remote": True,
            "vgpus": [{"compute_pct": args.compute_pct, "memory_mb": args.memory_mb}]
            * args.count,
            "host": host, "consumer": "orionx-run:%s:%d" % (host, os.getpid())}
    for name, value in (("priority", args.priority), ("preemptible", args.preemptible),
                        ("can_preempt", args.can_preempt)):
        if value:
            body[name] = value
    return body


def main(argv=None):
    parser = _parser()
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command given: orionx-run [options] -- CMD [ARG...]")
    if (args.compute_pct is None) != (args.memory_mb is None):
        parser.error("--compute-pct and --memory-mb go together: each vGPU needs both")
    if args.compute_pct is not None or args.allocation:
        return _run_on_allocation(parser, args, command)
    env = build_environment(os.environ, args.endpoint, args.token, args.transport,
                            args.tls_ca_file)
    if not env.get("ORIONX_ENDPOINT") or not env.get("ORIONX_TOKEN"):
        parser.error("say what to run on: --compute-pct and --memory-mb (with --controller), "
                     "--allocation, or --endpoint and --token (or ORIONX_ENDPOINT and "
                     "ORIONX_TOKEN)")
    try:
        os.execvpe(command[0], command, env)
    except OSError as exc:
        sys.stderr.write("orionx-run: cannot run %s: %s\n" % (command[0], exc.strerror))
        return 127


def _run_on_allocation(parser, args, command):
    from guest_runtime.controller_api import ControllerAPI, ControllerError

    controller = args.controller or os.environ.get("ORIONX_CONTROLLER")
    if not controller:
        parser.error("--controller URL (or ORIONX_CONTROLLER) is needed to create or bind "
                     "an allocation")
    host = args.host or os.environ.get("ORIONX_HOST") or socket.gethostname()
    api = ControllerAPI(controller)
    try:
        uuid = args.allocation or api.create_allocation(_allocation_body(args, host))["uuid"]
    except ControllerError as exc:
        sys.stderr.write("orionx-run: cannot create the allocation: %s\n" % exc)
        return 2
    env = build_environment(os.environ, transport=args.transport, controller=controller,
                            allocation=uuid, host=host, tls_ca_file=args.tls_ca_file)
    for name in ("ORIONX_ENDPOINT", "ORIONX_TOKEN"):
        env.pop(name, None)
    try:
        return _run_child(command, env)
    finally:
        _clean_up(api, uuid, created=not args.allocation)


def _run_child(command, env):
    try:
        child = subprocess.Popen(command, env=env)
    except OSError as exc:
        sys.stderr.write("orionx-run: cannot run %s: %s\n" % (command[0], exc.strerror))
        return 127
    # Signals meant for the program go to it; this process waits to clean up.
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, lambda number, _frame: child.send_signal(number))
    status = child.wait()
    return status if status >= 0 else 128 - status


def _clean_up(api, uuid, created):
    from guest_runtime.controller_api import ControllerError

    try:
        if created:
            api.delete_allocation(uuid)
        else:
            api.unbind(uuid)
    except ControllerError as exc:
        if exc.status != 404:
            sys.stderr.write("orionx-run: cleaning up allocation %s failed: %s\n" % (uuid, exc))


if __name__ == "__main__":
    sys.exit(main())
