"""The all-in-one pool: controller, REST API and console, and one agent with
its GPU servers, in one process tree on one machine.

Controller, API and agent are threads of one process and talk over
oslo.messaging's in-process ``fake://`` transport; GPU servers are child
processes the agent supervises. SQLite in the state directory holds the
pool unless ``[database] connection`` says otherwise.
"""

import os
import secrets
import threading

import oslo_messaging as messaging
import waitress
from oslo_log import log as logging

from orionx_agent.agent import service as agent_service
from orionx_common import agent_rpcapi, rpc
from orionx_nova.api import app as api_app
from orionx_nova.controller import service as controller_service
from orionx_nova.db import api as db_api
from orionx_nova.db import migration
from orionx_nova.objects import notifier

LOG = logging.getLogger(__name__)

SECRET_FILE = "session_secret"


def ensure_session_secret(conf):
    """Use ``[DEFAULT] session_secret``, or the one kept in the state
    directory (made on first start, readable by its owner only)."""
    if conf.session_secret:
        return conf.session_secret
    path = os.path.join(conf.state_dir, SECRET_FILE)
    if not os.path.exists(path):
        os.makedirs(conf.state_dir, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as secret_file:
            secret_file.write(secrets.token_hex(32) + "\n")
    with open(path) as secret_file:
        secret = secret_file.read().strip()
    conf.set_override("session_secret", secret)
    return secret


class AllInOne:
    """Start with :meth:`start`, stop with :meth:`stop`; :meth:`describe`
    says what runs where."""

    def __init__(self, conf, config_args=()):
        self.conf = conf
        self.config_args = list(config_args)
        self.transport = None
        self.controller = None
        self.agent = None
        self._api_server = None
        self._api_thread = None

    def start(self):
        ensure_session_secret(self.conf)
        migration.upgrade()
        self.transport = messaging.get_rpc_transport(self.conf, url="fake://")
        # Everything in this process shares the in-process transport: the
        # controller's casts reach the agent, the agent's calls the controller.
        rpc.set_transport(self.transport)
        notifier.set_notifier(agent_rpcapi.AgentAPI(transport=self.transport))
        self.controller = controller_service.ControllerService(transport=self.transport)
        self.controller.start()
        self.agent = agent_service.AgentService(self.conf, transport=self.transport,
                                                config_args=self.config_args)
        self.agent.start()
        self._start_api()
        return self

    def _start_api(self):
        self._api_server = waitress.create_server(
            api_app.create_app(), host=self.conf.api.bind_host, port=self.conf.api.bind_port,
            threads=self.conf.api.threads, ident="orionx-api")
        self._api_thread = threading.Thread(target=self._api_server.run,
                                            name="orionx-api", daemon=True)
        self._api_thread.start()

    @property
    def api_url(self):
        host = self.conf.api.bind_host
        host = "[%s]" % host if ":" in host else host
        return "http://%s:%s" % (host, self._api_server.effective_port)

    def describe(self):
        """Lines for the operator: what started and where."""
        lines = ["OrionX all-in-one pool on host %s" % self.conf.host,
                 "  REST API     %s/v1   (console %s/ui/, metrics %s/metrics)"
                 % (self.api_url, self.api_url, self.api_url),
                 "  database     %s" % db_api.get_engine().url.render_as_string(
                     hide_password=True),
                 "  state, logs  %s" % self.conf.state_dir]
        for gpu in self.agent.gpus:
            lines.append("  GPU %-8s %s, %d MB (%s)" % (
                gpu.get("index"), gpu.get("model"), gpu.get("memory_mb"), gpu.get("uuid")))
        if not self.agent.gpus:
            lines.append("  no GPUs on this host (give --sim-gpus 2x16384 to simulate some)")
        for endpoint in self.agent.endpoints()["gateway"]:
            lines.append("  data plane   %s" % endpoint)
        if self.agent.metrics is not None:
            lines.append("  agent        http://%s:%d/metrics" % (self.agent.metrics.host,
                                                                 self.agent.metrics.port))
        return lines

    def stop(self):
        """Guests first, then the agent and its GPU servers, the controller,
        and the API; safe to call after a partial start."""
        if self.agent is not None:
            self.agent.stop()
        if self.controller is not None:
            self.controller.stop()
        if self._api_server is not None:
            self._api_server.close()
            self._api_thread.join(timeout=5)
        notifier.set_notifier(None)
        rpc.set_transport(None)
        if self.transport is not None:
            self.transport.cleanup()
        db_api.dispose()
