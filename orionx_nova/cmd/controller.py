"""``orionx-controller``: serve agents over RPC and run the background loops."""

import signal
import sys
import threading

from oslo_log import log as logging

from orionx_common import config, rpc
from orionx_nova.controller import service

LOG = logging.getLogger(__name__)


def main(argv=None):
    config.parse_args(sys.argv[1:] if argv is None else argv)
    if not rpc.transport_configured():
        print("orionx-controller: [DEFAULT] transport_url is not set; agents reach the "
              "controller over RPC (e.g. rabbit://user:pass@host:5672/).", file=sys.stderr)
        return 2
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    controller = service.ControllerService()
    controller.start()
    stop.wait()
    LOG.info("orionx-controller stopping")
    controller.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
