"""A real Placement for tests: the ``openstack-placement`` WSGI app with
SQLite and ``noauth2``, served on a loopback port.

Run as its own process (``python -m tests.openstack.placement_server
STATE_DIR PORT``) so Placement's module-level database state never meets
the Nova functional framework's own in-process Placement in the test
process, and so a test can stop it by its PID.
"""

import sys
import wsgiref.simple_server

from oslo_config import cfg
from placement import conf as placement_conf
from placement import db_api, deploy

CONFIG = """\
[DEFAULT]
debug = False
[api]
auth_strategy = noauth2
[placement_database]
connection = sqlite:///{state_dir}/placement.sqlite
sync_on_startup = True
"""


class _QuietHandler(wsgiref.simple_server.WSGIRequestHandler):
    def log_message(self, *args):  # every request would go to stderr
        pass


def make_app(state_dir):
    config_file = "%s/placement.conf" % state_dir
    with open(config_file, "w") as out:
        out.write(CONFIG.format(state_dir=state_dir))
    config = cfg.ConfigOpts()
    placement_conf.register_opts(config)
    config([], project="placement", default_config_files=[config_file])
    db_api.configure(config)
    return deploy.loadapp(config)


def main(argv):
    state_dir, port = argv[1], int(argv[2])
    app = make_app(state_dir)
    server = wsgiref.simple_server.make_server(
        "127.0.0.1", port, app, handler_class=_QuietHandler)
    print("placement ready on %d" % port, flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main(sys.argv)
