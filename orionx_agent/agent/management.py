"""The agent's side of the management plane: register, heartbeat and report
sessions to the controller, whichever starts first and however often
either restarts.

Until a registration succeeds the agent retries every
``[agent] register_retry_interval``. A heartbeat that fails makes the next
tick register again: the controller may have restarted, or marked the node
down, and registration reconciles both sides (the agent wins for hardware,
the database for allocations).

A revocation from the controller makes the next report come at once
(:meth:`ManagementLink.report_soon`) instead of at the next heartbeat: the
controller holds a revoked allocation's capacity until a report shows its
sessions gone, so the report is what hands that capacity on.

A GPU server's exit is told at once; when the controller cannot be told
(not registered yet, or the call fails) it is told after the next
successful heartbeat, so the operator's event log never misses one.
"""

import threading

from oslo_log import log as logging

from orionx_agent.agent import usage as usage_mod

LOG = logging.getLogger(__name__)

REGISTER_TIMEOUT_MIN_S = 3


class ManagementLink:
    def __init__(self, agent, controller_api, heartbeat_interval_s, retry_interval_s):
        self.agent = agent
        self.api = controller_api
        self.heartbeat_interval_s = heartbeat_interval_s
        self.retry_interval_s = retry_interval_s
        self.registered = threading.Event()
        self.meter = usage_mod.UsageMeter()
        self._untold_exits = []  # (gpu uuid, exit status, restart_in_s)
        self._untold_lock = threading.Lock()
        self._stopping = threading.Event()
        # Set to end the wait between two beats early: a report is due now,
        # or the link stops.
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True,
                                        name="orionx-agent-management")

    def start(self):
        self._thread.start()

    def request_stop(self):
        self._stopping.set()
        self._wake.set()

    def stop(self, timeout_s=30.0):
        self.request_stop()
        self._thread.join(timeout_s)

    def report_soon(self, after_s=0.0):
        """Heartbeat and report sessions in ``after_s`` rather than at the
        next tick (after a revocation: once its sessions are gone, their
        capacity, which the controller holds, can be handed on)."""
        timer = threading.Timer(after_s, self._wake.set)
        timer.daemon = True
        timer.start()

    def _loop(self):
        while not self._stopping.is_set():
            wait_s = self.heartbeat_interval_s
            try:
                if not self.registered.is_set():
                    wait_s = wait_s if self._register() else self.retry_interval_s
                else:
                    self._beat()
            except Exception:  # a bug here must not silence the node
                LOG.exception("Talking to the controller failed unexpectedly; retrying")
            self._wake.wait(wait_s)
            self._wake.clear()

    def _register_timeout_s(self):
        # While no controller listens a call waits its whole timeout: keep
        # retries about as frequent as asked, but give a busy one time.
        return max(REGISTER_TIMEOUT_MIN_S, self.retry_interval_s)

    def _register(self):
        try:
            node = self.api.register({}, self.agent.hostname, self.agent.registration_gpus(),
                                     endpoints=self.agent.endpoints(),
                                     timeout_s=self._register_timeout_s())
        except Exception as exc:  # MessagingTimeout while the controller is away, ...
            LOG.warning("Registering host %s with the controller failed (%s); retrying in "
                        "%d s", self.agent.hostname, exc, self.retry_interval_s)
            return False
        LOG.info("Registered host %s with %d GPU(s)", self.agent.hostname, len(node["gpus"]))
        self.agent.apply_pools(node.get("gpu_pools") or {})
        self.registered.set()
        return True

    def _beat(self):
        report = self.meter.measure(self.agent.supervisor.servers.values())
        try:
            self.api.heartbeat({}, self.agent.hostname, usage=report.usage)
            answer = self.api.report_sessions({}, self.agent.hostname, report.sessions,
                                              ended_allocations=report.ended_allocations)
        except Exception as exc:
            LOG.warning("Heartbeat of host %s failed (%s); registering again",
                        self.agent.hostname, exc)
            self.meter.keep_ended(report.ended_allocations)
            self.registered.clear()
            return
        self._tell_exits()
        self._apply_missed_revocations((answer or {}).get("revoked") or {})
        if report.ended_allocations:
            LOG.info("Sessions of allocation(s) %s ended; the controller unbound %s",
                     ", ".join(item["uuid"] for item in report.ended_allocations),
                     ", ".join((answer or {}).get("released") or ()) or "none")

    def _apply_missed_revocations(self, revoked):
        """The controller's answer names allocations this host reported a
        session of whose generation is older than its current one (a cast
        that did not arrive): revoke them as the cast would have."""
        for allocation_uuid, below_generation in revoked.items():
            LOG.info("The controller's report answer revokes allocation %s below "
                     "generation %s (a revocation this host missed)", allocation_uuid,
                     below_generation)
            self.agent.revoke_allocation(allocation_uuid, below_generation,
                                         "ended while this host missed the revocation")

    def gpu_server_exited(self, server, status, restart_in_s):
        """Tell the controller now rather than at the next heartbeat."""
        with self._untold_lock:
            self._untold_exits.append((server.gpu["uuid"], status, restart_in_s))
        if self.registered.is_set():
            self._tell_exits()

    def _tell_exits(self):
        while True:
            with self._untold_lock:
                if not self._untold_exits:
                    return
                gpu_uuid, status, restart_in_s = self._untold_exits.pop(0)
            try:
                self.api.gpu_server_exited({}, self.agent.hostname, gpu_uuid, status,
                                           restart_in_s)
            except Exception as exc:
                LOG.warning("Cannot tell the controller yet that the GPU server of %s exited "
                            "(%s); telling it after the next heartbeat", gpu_uuid, exc)
                with self._untold_lock:
                    self._untold_exits.insert(0, (gpu_uuid, status, restart_in_s))
                return
