"""orionx-run: run a program with its CUDA calls served by OrionX.

    orionx-run --compute-pct 25 --memory-mb 4096 [--count N] [--priority P]
               [--controller URL] [--host H] -- CMD ...
    orionx-run --allocation UUID [--controller URL] -- CMD ...
    orionx-run [--endpoint E] [--token T] [--transport X] -- CMD ...

With ``--compute-pct``/``--memory-mb`` an acquire-mode allocation of ``--count``
vGPUs is created, CMD runs on it (binding when it creates its first
context, queueing while the pool is full) and the allocation is deleted
when CMD ends, however it ends. With ``--allocation`` an existing one is
used and, when CMD bound it, unbound afterwards. With an endpoint and token
CMD is exec'd straight onto that GPU server. ``--compute``/``--memory``, the
flags' spelling before the names settled, still work for one release
(hidden).

CMD runs on OrionX's ``libcuda.so.1`` (guest_runtime/lib, built by the
install or ``make libcuda``): its directory goes first on ``LD_LIBRARY_PATH``,
which is where NVIDIA's cuda-python (``dlopen("libcuda.so.1")``), cuda.core,
Numba and programs linked with ``-lcuda`` find the driver; nothing of the
program's Python packages changes. ``--preload`` adds the library to
``LD_PRELOAD`` for programs that would find the machine's own driver first.
In acquire mode the library binds through this process: the acquire broker
(acquire_broker.py) serves it on the socket named in ORIONX_ACQUIRE_SOCKET.
"""

import argparse
import os
import signal
import socket
import subprocess
import sys

LIBRARY_NAME = "libcuda.so.1"
# Where the install (setup.py's build_py) and `make libcuda` put the library.
DEFAULT_LIBRARY_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib")
# Settings of the other modes, which must not reach CMD beside this one's.
_NOT_WITH_ACQUIRE = ("ORIONX_ENDPOINT", "ORIONX_TOKEN", "ORIONX_VGPU_INDEX",
                     "ORIONX_CONTROLLER", "ORIONX_ALLOCATION")
_NOT_WITH_ENDPOINT = ("ORIONX_CONTROLLER", "ORIONX_ALLOCATION", "ORIONX_ACQUIRE_SOCKET")


class LibraryMissing(Exception):
    """OrionX's libcuda.so.1 is not where orionx-run looks for it."""


def library_dir(env):
    """The directory of the libcuda.so.1 CMD gets: $ORIONX_LIBCUDA_DIR, else
    the package's own build. LibraryMissing, saying how to build it, if absent."""
    directory = os.path.abspath(env.get("ORIONX_LIBCUDA_DIR") or DEFAULT_LIBRARY_DIR)
    if not os.path.isfile(os.path.join(directory, LIBRARY_NAME)):
        raise LibraryMissing(
            "OrionX's CUDA library %s is not built: run `make libcuda` in the source tree "
            "(or install the package again, which builds it; it needs a C compiler)"
            % os.path.join(directory, LIBRARY_NAME))
    return directory


def build_environment(base, library, endpoint=None, token=None, transport=None,
                      tls_ca_file=None, acquire_socket=None, preload=False):
    """``base`` plus what points CMD at OrionX: the library directory
    ``library`` first on LD_LIBRARY_PATH (and on LD_PRELOAD with
    ``preload``), and the session's settings, either an endpoint and token or
    the acquire broker's socket."""
    env = dict(base)
    for name in (_NOT_WITH_ACQUIRE if acquire_socket
                 else _NOT_WITH_ENDPOINT if endpoint or token else ()):
        env.pop(name, None)
    for name, value in (("ORIONX_ENDPOINT", endpoint), ("ORIONX_TOKEN", token),
                        ("ORIONX_ACQUIRE_SOCKET", acquire_socket),
                        ("ORIONX_TRANSPORT", transport), ("ORIONX_TLS_CA_FILE", tls_ca_file)):
        if value:
            env[name] = value
    env["LD_LIBRARY_PATH"] = _prepend(library, env.get("LD_LIBRARY_PATH"), ":")
    if preload:
        # Loaded before anything the program names, our symbols come first
        # in the lookup: a binary whose DT_RPATH (or a full path) finds the
        # machine's own libcuda.so.1 before LD_LIBRARY_PATH still calls ours.
        env["LD_PRELOAD"] = _prepend(os.path.join(library, LIBRARY_NAME),
                                     env.get("LD_PRELOAD"), " ")
    return env


def _prepend(item, current, separator):
    rest = [part for part in (current or "").split(separator) if part and part != item]
    return separator.join([item] + rest)


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
    parser.add_argument("--preload", action="store_true",
                        help="also LD_PRELOAD the library, for programs that would load "
                        "the machine's own libcuda.so.1 first (DT_RPATH, a full path)")
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
    acquire = args.compute_pct is not None or args.allocation
    endpoint = args.endpoint or os.environ.get("ORIONX_ENDPOINT")
    token = args.token or os.environ.get("ORIONX_TOKEN")
    if not acquire and (not endpoint or not token):
        parser.error("say what to run on: --compute-pct and --memory-mb (with --controller), "
                     "--allocation, or --endpoint and --token (or ORIONX_ENDPOINT and "
                     "ORIONX_TOKEN)")
    controller = args.controller or os.environ.get("ORIONX_CONTROLLER")
    if acquire and not controller:
        parser.error("--controller URL (or ORIONX_CONTROLLER) is needed to create or bind "
                     "an allocation")
    try:
        library = library_dir(os.environ)
    except LibraryMissing as exc:
        sys.stderr.write("orionx-run: %s\n" % exc)
        return 2
    if acquire:
        return _run_on_allocation(args, controller, command, library)
    env = build_environment(os.environ, library, endpoint, token, args.transport,
                            args.tls_ca_file, preload=args.preload)
    try:
        os.execvpe(command[0], command, env)
    except OSError as exc:
        sys.stderr.write("orionx-run: cannot run %s: %s\n" % (command[0], exc.strerror))
        return 127


def _run_on_allocation(args, controller, command, library):
    from guest_runtime.acquire_broker import AcquireBroker
    from guest_runtime.controller_api import ControllerAPI, ControllerError

    host = args.host or os.environ.get("ORIONX_HOST") or socket.gethostname()
    api = ControllerAPI(controller)
    try:
        uuid = args.allocation or api.create_allocation(_allocation_body(args, host))["uuid"]
    except ControllerError as exc:
        sys.stderr.write("orionx-run: cannot create the allocation: %s\n" % exc)
        return 2
    broker = AcquireBroker(api, uuid, host)
    try:
        env = build_environment(os.environ, library, transport=args.transport,
                                tls_ca_file=args.tls_ca_file, acquire_socket=broker.start(),
                                preload=args.preload)
        return _run_child(command, env)
    except OSError as exc:
        sys.stderr.write("orionx-run: %s\n" % exc)
        return 2
    finally:
        # No bind can follow once the broker is closed: then release.
        broker.close()
        _clean_up(api, uuid, created=not args.allocation, bound=broker.bound)


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


def _clean_up(api, uuid, created, bound):
    """Delete the allocation orionx-run created; unbind an existing one that
    CMD bound (one it never bound stays as its owner left it)."""
    from guest_runtime.controller_api import ControllerError

    try:
        if created:
            api.delete_allocation(uuid)
        elif bound:
            api.unbind(uuid)
    except ControllerError as exc:
        if exc.status != 404:
            sys.stderr.write("orionx-run: cleaning up allocation %s failed: %s\n" % (uuid, exc))


if __name__ == "__main__":
    sys.exit(main())
