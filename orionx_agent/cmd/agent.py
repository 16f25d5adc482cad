"""orionx-agent: the host agent (see :mod:`orionx_agent.agent`)."""

import signal
import sys
import threading

from oslo_log import log as logging

from orionx_agent.agent import service, supervisor
from orionx_agent.conf import CONF
from orionx_common import config

LOG = logging.getLogger(__name__)


def main(argv=None):
    config.parse_args(sys.argv[1:] if argv is None else argv)
    try:
        agent = service.AgentService(CONF, config_args=supervisor.inherited_config_args(CONF))
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
