"""orionx-agent: the host agent (see :mod:`orionx_agent.agent`)."""

import signal
import sys
import threading

from oslo_log import log as logging

from orionx_agent.agent import service
from orionx_agent.conf import CONF
from orionx_nova import config

LOG = logging.getLogger(__name__)


def _config_args(conf):
    """The options GPU servers inherit: the agent's own config files."""
    args = []
    for path in conf.config_file or ():
        args += ["--config-file", path]
    for path in conf.config_dir or ():
        args += ["--config-dir", path]
    return args


def main(argv=None):
    config.parse_args(sys.argv[1:] if argv is None else argv)
    try:
        agent = service.AgentService(CONF, config_args=_config_args(CONF))
    except (RuntimeError, ValueError) as exc:
        problem = str(exc)
    else:
        return _run(agent)
    LOG.error("%s", problem)  # outside the except block: the message says it all
    return 2


def _run(agent):
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    agent.start()
    stop.wait()
    agent.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
