"""The pool API calls behind virsh-managed domains: their allocations'
creation, binding, release and deletion, and the session tokens the agent
presents for them (a VM itself holds no token).

A domain's allocation is an acquire-mode allocation in the pool whatever the
domain's own mode: the pool's reserve mode holds GPUs until deletion, while
a domain in reserve mode holds them only while it runs (bound when it
starts, released when it stops), so its allocation is created with
unbind_on_session_end false: programs in the domain come and go without
unbinding it. A domain in acquire mode is bound when a program in it opens
its first session and unbound when that session ends.
"""

import time

from orionx_nova.virt.pool_api import PoolApi, PoolApiError

PoolError = PoolApiError

BIND_WAIT_S = 60.0
BIND_POLL_S = 0.5


class VmSessions(PoolApi):
    def __init__(self, url, hostname, user=None, password=None, bind_wait_s=BIND_WAIT_S):
        super().__init__(url, user, password)
        self.hostname = hostname
        self.bind_wait_s = bind_wait_s

    def create(self, consumer, vgpus, domain_mode, queue=True):
        """A new allocation of ``vgpus`` [(compute_pct, memory_mb)] for a
        domain in ``domain_mode`` (reserve: bound while the domain runs)."""
        return self._call("post", "/v1/allocations", {
            "consumer": consumer, "host": self.hostname, "mode": "acquire",
            "unbind_on_session_end": domain_mode != "reserve",
            "allow_remote": True, "queue": queue,
            "vgpus": [{"compute_pct": c, "memory_mb": m} for c, m in vgpus]})

    def get(self, uuid):
        return self._call("get", "/v1/allocations/" + uuid)

    def bind(self, uuid):
        return self._call("post", "/v1/allocations/%s/bind" % uuid)

    def unbind(self, uuid):
        return self._call("post", "/v1/allocations/%s/unbind" % uuid)

    def delete(self, uuid):
        try:
            self._call("delete", "/v1/allocations/" + uuid)
        except PoolApiError as exc:
            if "404" not in str(exc):
                raise

    def tokens(self, uuid, bind=True):
        """The session token of each vGPU of allocation ``uuid``, binding it
        first (idempotent) and waiting while it is queued."""
        allocation = self.bind(uuid) if bind else self.get(uuid)
        deadline = time.monotonic() + self.bind_wait_s
        while not _bound(allocation):
            if allocation["state"] != "queued":
                raise PoolApiError("allocation %s is %s, not bound (%s)" % (
                    uuid, allocation["state"], allocation.get("state_reason") or "no reason"))
            if time.monotonic() > deadline:
                raise PoolApiError("allocation %s still waits in the queue (position %s) after "
                                   "%d s; the program may retry later"
                                   % (uuid, allocation.get("queue_position"), self.bind_wait_s))
            time.sleep(BIND_POLL_S)
            allocation = self.get(uuid)
        session = self._call("post", "/v1/allocations/%s/session" % uuid,
                             {"host": self.hostname})
        return [vgpu["token"] for vgpu in sorted(session["vgpus"], key=lambda v: v["index"])]


def _bound(allocation):
    return allocation["state"] == "active" and all(v["gpu_uuid"] for v in allocation["vgpus"])
