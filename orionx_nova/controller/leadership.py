"""Which controller runs the background loops.

Every controller answers agents over RPC, but the periodic work -- marking
silent nodes down, serving the queue, sampling usage history and checking
alerts, syncing Placement -- is done by one of them at a time: the holder
of one lock in the tooz backend of ``[coordination] backend_url``. The
others try to take the lock every ``election_interval_s`` and take over
when the leader dies (its database connection closes, or its Redis or etcd
lock expires). Without a backend this controller always leads.

The loops are safe to run twice (their rows are locked inside their
transactions); a single leader keeps them from doing the work twice, such
as writing every usage sample twice.
"""

import threading

from oslo_log import log as logging

LOG = logging.getLogger(__name__)

LOCK_NAME = b"orionx-controller-background-loops"


class Leadership:
    """``is_leader()`` says whether this controller runs the loops now."""

    def __init__(self, backend_url, member_id, election_interval_s):
        self.backend_url = backend_url
        self.member_id = member_id
        self.election_interval_s = election_interval_s
        self._leading = threading.Event()
        self._stopping = threading.Event()
        self._coordinator = None
        self._lock = None
        self._thread = None
        self._backend_failing = False
        if not backend_url:
            self._leading.set()

    def is_leader(self):
        return self._leading.is_set()

    def start(self):
        if not self.backend_url:
            LOG.info("No [coordination] backend_url: this controller runs the background loops")
            return self
        # In its own thread from the first attempt: a backend that does not
        # answer must not hold up the controller's start.
        self._thread = threading.Thread(target=self._run, name="orionx-controller-election",
                                        daemon=True)
        self._thread.start()
        return self

    def _run(self):
        self._campaign()  # a lone controller leads at once, not one interval later
        while not self._stopping.wait(self.election_interval_s):
            self._campaign()

    def _campaign(self):
        """Take the lead if the lock is free; as leader, check it is still ours."""
        try:
            if self._coordinator is None:
                self._connect()
            if self.is_leader():
                if not self._still_owner():
                    self._lose("its lock in the coordination backend is gone")
                    self._disconnect()  # a fresh lock object at the next attempt
            elif self._lock.acquire(blocking=False):
                self._leading.set()
                LOG.info("Controller %s leads the background loops", self.member_id)
        except Exception as exc:  # tooz wraps most driver errors, not all
            # The backend is away: a leader cannot tell whether another took
            # over, so it stops; everyone tries again at the next interval.
            # Nothing may end this thread, or the controller would never lead.
            if not self._backend_failing:
                LOG.warning("Controller %s cannot reach the coordination backend ([coordination] "
                            "backend_url): %s; it runs no background loops until it can, and "
                            "tries again every %.1f s", self.member_id, exc,
                            self.election_interval_s)
            self._backend_failing = True
            self._lose("the coordination backend failed: %s" % exc)
            self._disconnect()
            return
        if self._backend_failing:
            LOG.info("Controller %s reaches the coordination backend again", self.member_id)
            self._backend_failing = False

    def _connect(self):
        from tooz import coordination

        coordinator = coordination.get_coordinator(self.backend_url,
                                                   self.member_id.encode("utf-8"))
        coordinator.start(start_heart=True)  # keeps TTL-based locks (Redis, etcd) alive
        self._coordinator, self._lock = coordinator, coordinator.get_lock(LOCK_NAME)

    def _still_owner(self):
        import tooz

        try:
            return self._lock.is_still_owner()
        except tooz.NotImplemented:
            pass
        # PostgreSQL and MySQL: the advisory lock lives exactly as long as the
        # database session that took it, and tooz does not say when that
        # session died (a database restart): ask over its connection.
        if not self._lock.acquired:
            return False
        connection = getattr(self._lock, "_conn", None)
        if connection is None:
            return True  # a driver without a session to probe: trust the lock
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
                cursor.fetchall()
        except Exception as exc:  # psycopg2 or PyMySQL errors: the session is gone
            LOG.debug("The leader lock's database session failed: %s", exc)
            return False
        return True

    def _lose(self, why):
        if self.is_leader():
            self._leading.clear()
            LOG.warning("Controller %s no longer leads the background loops: %s",
                        self.member_id, why)

    def _disconnect(self):
        coordinator, lock = self._coordinator, self._lock
        self._coordinator = self._lock = None
        if coordinator is None:
            return
        try:
            if lock is not None and lock.acquired:
                lock.release()
        except Exception as exc:  # the backend may be gone; its side frees the lock
            LOG.debug("Releasing the leader lock failed: %s", exc)
        try:
            coordinator.stop()
        except Exception as exc:
            LOG.debug("Stopping the coordinator failed: %s", exc)

    def stop(self):
        """Hand the lead over (a standby takes it at its next attempt)."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None
        if self.backend_url:
            self._lose("it is stopping")
            self._disconnect()
