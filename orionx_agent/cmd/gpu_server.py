"""orionx-gpu-server: serve one physical GPU to many sessions."""

import signal
import sys

from oslo_config import cfg
from oslo_log import log as logging

from orionx_agent.conf import CONF
from orionx_agent.dev_tokens import development_token
from orionx_agent.server import factory
from orionx_common import config
from orionx_common.session_token import TokenError

LOG = logging.getLogger(__name__)

cli_opts = [
    cfg.BoolOpt("print-token", default=False,
                help="Print a session token signed with [DEFAULT] session_secret and exit "
                "(development and tests; the controller mints real ones)."),
    cfg.IntOpt("token-memory-mb", default=1024, help="memory_mb of --print-token's vGPU."),
    cfg.IntOpt("token-compute-pct", default=100, help="compute_pct of --print-token's vGPU."),
    cfg.IntOpt("token-ttl-s", default=86400, help="Seconds --print-token's token is valid."),
]


def main(argv=None):
    CONF.register_cli_opts(cli_opts)
    config.parse_args(sys.argv[1:] if argv is None else argv)
    try:
        if CONF.print_token:
            print(development_token(CONF.session_secret, CONF.token_compute_pct,
                                    CONF.token_memory_mb, ttl_s=CONF.token_ttl_s))
            return 0
        server = factory.build_server(CONF)
    except (TokenError, RuntimeError, ValueError) as exc:
        problem = str(exc)
    else:
        return _serve(server)
    # Logged outside the except block: the message says it all, no traceback.
    LOG.error("%s", problem)
    return 2


def _serve(server):
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: server.stop())
    server.start()
    server.wait()
    server.backend.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
