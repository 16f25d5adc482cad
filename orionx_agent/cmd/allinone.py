"""``orionx-allinone``: the whole pool on this machine (see
:mod:`orionx_agent.allinone`)."""

import os
import signal
import sys
import threading

from oslo_config import cfg
from oslo_log import log as logging

from orionx_agent import allinone
from orionx_agent.agent import supervisor
from orionx_agent.conf import CONF
from orionx_common import config

LOG = logging.getLogger(__name__)

cli_opts = [
    cfg.StrOpt("sim-gpus",
               help="Simulated GPUs when NVML finds none, as COUNTxMEMORY_MB "
               "(default: [agent] sim_gpus, or 1x16384 when that is empty too)."),
    cfg.PortOpt("port", help="Port of the REST API (default: [api] bind_port); the "
                "data plane's TCP gateway takes the next port, the agent's metrics "
                "the one after."),
    cfg.BoolOpt("demo", default=False,
                help="Once the pool runs, run the demo (examples/throughput.py jobs "
                "through orionx-run; start from the source tree)."),
    cfg.BoolOpt("exit-after-demo", default=False,
                help="With --demo: stop the pool when the demo ends and exit with its "
                "status (for tests and CI)."),
]

DEFAULT_SIM_GPUS = "1x16384"
LOOPBACK_HOSTS = ("127.0.0.1", "::1", "localhost")
LOG_FILE = "orionx-allinone.log"


def _is_default(conf, name, group):
    """True when no config file or override set the option."""
    return conf.get_location(name, group).location == cfg.Locations.opt_default


def _apply_cli(conf):
    conf.set_override("sim_gpus", conf.sim_gpus or conf.agent.sim_gpus or DEFAULT_SIM_GPUS,
                      group="agent")
    if conf.port:
        conf.set_override("bind_port", conf.port, group="api")
    if _is_default(conf, "gateway_tcp_listen", "agent"):
        # Guests that cannot use the unix socket (a container, a remote-style
        # client) reach the pool over TCP beside the API, on the same address.
        conf.set_override("gateway_tcp_listen", "%s:%d" % (
            conf.api.bind_host, conf.api.bind_port + 1), group="agent")
        if not conf.agent.gateway_advertise_host:
            conf.set_override("gateway_advertise_host", conf.api.bind_host, group="agent")
    if _is_default(conf, "metrics_listen", "agent"):
        # Beside the API, but on loopback unless a token guards it: every
        # project's sessions show there.
        host = conf.api.bind_host if conf.agent.metrics_token else "127.0.0.1"
        conf.set_override("metrics_listen", "%s:%d" % (host, conf.api.bind_port + 2),
                          group="agent")
    if _is_default(conf, "auth_strategy", "api") and conf.api.bind_host in LOOPBACK_HOSTS:
        # A pool only this machine can reach, started without a config that
        # says otherwise: no accounts to set up before the first try. Any
        # other bind address keeps the configured (default: local) accounts.
        conf.set_override("auth_strategy", "noauth", group="api")
        LOG.warning("[api] auth_strategy is noauth: the API listens on %s only; set "
                    "auth_strategy in a config file to require accounts",
                    conf.api.bind_host)
    if not conf.log_file and not conf.log_dir:
        os.makedirs(conf.state_dir, exist_ok=True)
        conf.set_override("log_file", os.path.join(conf.state_dir, LOG_FILE))
        logging.setup(conf, config.PROJECT)


def main(argv=None):
    CONF.register_cli_opts(cli_opts)
    config.parse_args(sys.argv[1:] if argv is None else argv)
    _apply_cli(CONF)
    pool = allinone.AllInOne(CONF, config_args=supervisor.inherited_config_args(CONF))
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    try:
        pool.start()
    except Exception as exc:
        LOG.exception("The all-in-one pool failed to start")
        print("orionx-allinone: failed to start: %s (see %s)" % (exc, CONF.log_file),
              file=sys.stderr)
        pool.stop()
        return 1
    print("\n".join(pool.describe()), flush=True)
    status = 0
    if CONF.demo:
        status = _run_demo(pool)
        if CONF.exit_after_demo:
            stop.set()
    if not stop.is_set():
        print(USAGE_HINTS % {"url": pool.api_url}, flush=True)
    stop.wait()
    print("Stopping the pool...", flush=True)
    pool.stop()
    return status


USAGE_HINTS = """
The pool keeps running. In another terminal:
    export ORIONX_URL=%(url)s ORIONX_CONTROLLER=%(url)s
    .venv/bin/orionx gpu list                 # GPUs and what is allocated on them
    .venv/bin/orionx queue list               # who waits
    .venv/bin/orionx-run --compute 25 --memory 1024 -- .venv/bin/python examples/saxpy.py
    open %(url)s/ui/ for the console
Press Ctrl-C here to stop the pool."""


def _run_demo(pool):
    from orionx_agent import demo

    try:
        jobs = demo.run(pool.api_url)
    except Exception as exc:  # the pool stays up; the operator sees why
        LOG.exception("The demo failed")
        print("orionx-allinone: the demo failed: %s" % exc, file=sys.stderr, flush=True)
        return 1
    return 0 if all(job.outcome in ("ok", "preempted") for job in jobs) else 1


if __name__ == "__main__":
    sys.exit(main())
