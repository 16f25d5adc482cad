"""``orionx-api``: serve the REST API with waitress."""

import sys

import waitress
from oslo_log import log as logging

from orionx_common import config
from orionx_nova.api import app as api_app
from orionx_nova.conf import CONF

LOG = logging.getLogger(__name__)


def main(argv=None):
    config.parse_args(sys.argv[1:] if argv is None else argv)
    if CONF.api.auth_strategy == "noauth":
        LOG.warning("[api] auth_strategy is noauth: every caller is an admin. "
                    "Use it for development only.")
    application = api_app.create_app()
    LOG.info("orionx-api listening on http://%s:%s/", CONF.api.bind_host, CONF.api.bind_port)
    print("orionx-api listening on http://%s:%s/" % (CONF.api.bind_host, CONF.api.bind_port),
          flush=True)
    waitress.serve(
        application,
        host=CONF.api.bind_host,
        port=CONF.api.bind_port,
        threads=CONF.api.threads,
        ident="orionx-api",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
