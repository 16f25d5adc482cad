"""The key that signs the console's session cookies."""

import os
import secrets

from oslo_log import log as logging

from orionx_common import config
from orionx_nova.conf import CONF

LOG = logging.getLogger(__name__)

SECRET_FILE = "console-secret"
_KEY_BYTES = 32


def signing_key():
    """``[api] console_secret_key``, else a random key kept in the state
    directory (created on first use, readable by its owner only), so
    logins survive a restart of orionx-api."""
    if CONF.api.console_secret_key:
        return CONF.api.console_secret_key
    path = config.state_path(SECRET_FILE)
    try:
        with open(path, encoding="ascii") as handle:
            key = handle.read().strip()
        if key:
            return key
    except FileNotFoundError:
        pass
    key = secrets.token_hex(_KEY_BYTES)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    # O_EXCL: when two processes start at once, the second reads the first's key.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        with open(path, encoding="ascii") as handle:
            return handle.read().strip()
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(key)
    LOG.info("Created the console's cookie signing key in %s; set [api] "
             "console_secret_key to share one key between API processes", path)
    return key
