"""The controller service: RPC server for agents plus background loops.

Loops are idempotent database work (marking nodes down, serving the queue),
so several controllers on one database could run them at once; the rows
they change are locked inside their transactions. Only the controller that
leads (:mod:`orionx_nova.controller.leadership`) runs them, so that work
such as writing a usage sample is not done twice.
"""

import os
import threading
import uuid

import oslo_messaging as messaging
from oslo_log import log as logging

from orionx_common import controller_rpcapi, rpc
from orionx_nova.alerts import checker
from orionx_nova.conf import CONF
from orionx_nova.controller import leadership, manager
from orionx_nova.db import models
from orionx_nova.objects import history, housekeeping, nodes, queue
from orionx_nova.placement import loop as placement_loop

LOG = logging.getLogger(__name__)


class ControllerService:
    def __init__(self, transport=None):
        self._transport = transport
        self._stopping = threading.Event()
        self._threads = []
        self._rpc_server = None
        self.placement = None
        self.leadership = leadership.Leadership(
            CONF.coordination.backend_url,
            "%s:%d:%s" % (CONF.host, os.getpid(), uuid.uuid4().hex[:8]),
            CONF.coordination.election_interval_s)

    def start(self):
        transport = self._transport or rpc.get_transport()
        target = messaging.Target(topic=controller_rpcapi.TOPIC, server=CONF.host)
        self._rpc_server = messaging.get_rpc_server(
            transport, target, [manager.ControllerManager()])
        self._rpc_server.start()
        self.leadership.start()
        self._start_loop("reaper", CONF.controller.reap_interval, self._reap_and_serve)
        if CONF.history.sampler_enabled:
            self._start_loop("history", CONF.history.sample_interval_s, self._sample_and_alert)
        if CONF.placement.sync_enabled:
            self._start_placement_sync()
        LOG.info("orionx-controller %s serving topic %s", CONF.host, controller_rpcapi.TOPIC)

    def _start_placement_sync(self):
        # Its own thread: it wakes on pool changes, not on a fixed interval.
        self.placement = placement_loop.PlacementLoop(self._stopping,
                                                      leading=self.leadership.is_leader)
        thread = threading.Thread(target=self.placement.run, name="orionx-controller-placement",
                                  daemon=True)
        thread.start()
        self._threads.append(thread)

    def _start_loop(self, name, interval_s, work):
        thread = threading.Thread(target=self._loop, args=(interval_s, work),
                                  name="orionx-controller-%s" % name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _loop(self, interval_s, work):
        while not self._stopping.wait(interval_s):
            if not self.leadership.is_leader():
                continue
            try:
                work()
            except Exception:  # a DB outage must not kill the loop
                LOG.exception("Controller background work failed; retrying in %d s",
                              interval_s)

    @staticmethod
    def _reap_and_serve():
        down = nodes.reap_dead_nodes()
        if down:
            LOG.warning("Nodes marked down after missed heartbeats: %s", ", ".join(down))
        expired = housekeeping.release_expired_holds()
        if expired:
            LOG.warning("Capacity of allocation(s) %s handed on after [controller] "
                        "revocation_timeout_s with their sessions not reported gone",
                        ", ".join(expired))
        housekeeping.delete_abandoned_acquires()
        # Capacity may also have freed through paths that could not serve the
        # queue themselves (a crash between commit and serving); serving is
        # cheap when nothing fits.
        queue.serve()

    @staticmethod
    def _sample_and_alert():
        # Alerts follow the sample so both see the same moment of the pool.
        now = models.utcnow()
        history.sample_and_prune(now)
        checker.check(now)

    def stop(self):
        self._stopping.set()
        if self.placement is not None:
            self.placement.wake()
        if self._rpc_server is not None:
            self._rpc_server.stop()
            self._rpc_server.wait()
        for thread in self._threads:
            thread.join(10)
        self.leadership.stop()
