"""Command-line and config-file parsing plus logging, for every service.

Each ``cmd`` module calls :func:`parse_args` once, first thing; afterwards
``CONF`` is complete and oslo.log is set up.
"""

import os

from oslo_log import log as logging

from orionx_common.conf import CONF

PROJECT = "orionx"

_logging_registered = False


def parse_args(argv, default_config_files=None, default_log_levels=None):
    """Parse ``argv`` (without the program name) and config files, then set
    up logging. ``default_config_files`` defaults to oslo.config's search
    (``/etc/orionx/orionx.conf`` and friends)."""
    global _logging_registered
    if not _logging_registered:
        logging.register_options(CONF)
        _logging_registered = True
    if default_log_levels:
        logging.set_defaults(
            default_log_levels=logging.get_default_log_levels() + default_log_levels
        )
    CONF(
        argv,
        project=PROJECT,
        default_config_files=default_config_files,
    )
    logging.setup(CONF, PROJECT)


def state_path(*parts):
    """Path under ``[DEFAULT] state_dir``, creating the directory on demand."""
    os.makedirs(CONF.state_dir, mode=0o750, exist_ok=True)
    return os.path.join(CONF.state_dir, *parts)
