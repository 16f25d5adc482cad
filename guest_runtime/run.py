"""orionx-run: run a program with its CUDA calls served by an OrionX GPU server.

    orionx-run [--endpoint E] [--token T] [--transport auto|shm|unix|tcp|tls] -- CMD ...

CMD runs with the runtime's settings in its environment and with the shim
directory first on PYTHONPATH, so that ``from cuda.bindings import driver``
(or ``import cuda.bindings.driver``) gets ``guest_runtime.cuda`` in that
process only; site-packages stays untouched.
"""

import argparse
import os
import sys

SHIM_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "shim")


def build_environment(base, endpoint=None, token=None, transport=None, tls_ca_file=None):
    """``base`` plus the variables that point CMD at the GPU server and the shim."""
    env = dict(base)
    for name, value in (("ORIONX_ENDPOINT", endpoint), ("ORIONX_TOKEN", token),
                        ("ORIONX_TRANSPORT", transport), ("ORIONX_TLS_CA_FILE", tls_ca_file)):
        if value:
            env[name] = value
    # guest_runtime itself must stay importable from the shim, wherever it lives.
    package_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    paths = [SHIM_DIR, package_root] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep)
                                        if p]
    env["PYTHONPATH"] = os.pathsep.join(paths)
    return env


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="orionx-run", description="Run CMD against an OrionX GPU server.",
        usage="orionx-run [--endpoint E] [--token T] [--transport X] -- CMD [ARG...]")
    parser.add_argument("--endpoint", help="unix:PATH, tcp:HOST:PORT or tls:HOST:PORT "
                        "(comma-separated; default $ORIONX_ENDPOINT)")
    parser.add_argument("--token", help="session token (default $ORIONX_TOKEN)")
    parser.add_argument("--transport", choices=("auto", "shm", "unix", "tcp", "tls"),
                        help="force one transport (default: the fastest offered)")
    parser.add_argument("--tls-ca-file", help="CA bundle for tls: endpoints")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command given: orionx-run [options] -- CMD [ARG...]")
    env = build_environment(os.environ, args.endpoint, args.token, args.transport,
                            args.tls_ca_file)
    if not env.get("ORIONX_ENDPOINT") or not env.get("ORIONX_TOKEN"):
        parser.error("an endpoint and a token are needed: pass --endpoint and --token or "
                     "set ORIONX_ENDPOINT and ORIONX_TOKEN")
    try:
        os.execvpe(command[0], command, env)
    except OSError as exc:
        sys.stderr.write("orionx-run: cannot run %s: %s\n" % (command[0], exc.strerror))
        return 127


if __name__ == "__main__":
    sys.exit(main())
