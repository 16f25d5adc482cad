"""The driver's calls to orionx-api: this host's GPUs, and binding an
instance's vGPUs (one reserve-mode allocation whose consumer is the
instance uuid) and releasing them."""

from oslo_log import log as logging

from orionx_nova.client import http

LOG = logging.getLogger(__name__)


class PoolApiError(Exception):
    pass


class PoolApi:
    def __init__(self, url, user=None, password=None, timeout_s=http.DEFAULT_TIMEOUT_S):
        self._client = http.ApiClient(url, timeout_s=timeout_s)
        self._user, self._password = user, password

    def _log_in(self):
        answer = self._client.post("/v1/auth/tokens",
                                   {"name": self._user, "password": self._password})
        self._client.token = answer["token"]

    def _call(self, method, path, *args, **query):
        try:
            if self._user and not self._client.token:
                self._log_in()
            try:
                return getattr(self._client, method)(path, *args, **query)
            except http.ApiError as exc:
                if exc.code != 401 or not self._user:
                    raise
                self._log_in()  # the token expired
                return getattr(self._client, method)(path, *args, **query)
        except http.ApiError as exc:
            raise PoolApiError(exc.message) from None

    def gpus_on(self, hostname):
        return self._call("get", "/v1/gpus", node=hostname)["gpus"]

    def binding_of(self, instance_uuid):
        """The instance's allocation, or None."""
        found = self._call("get", "/v1/allocations", consumer=instance_uuid)["allocations"]
        return found[0] if found else None

    def bind(self, instance_uuid, hostname, vgpus, request):
        """Create the instance's allocation: ``vgpus`` is a list of
        (compute_pct, memory_mb, gpu uuid or None) in vGPU order."""
        body = {"consumer": instance_uuid, "host": hostname, "mode": "reserve",
                "queue": False, "priority": request.priority,
                "preemptible": request.preemptible}
        if all(v.native for v in request.vgpus):
            body.update(native=True, count=len(vgpus))
        else:
            body["vgpus"] = [{"compute_pct": c, "memory_mb": m} for c, m, _ in vgpus]
        pins = [gpu for _, _, gpu in vgpus]
        if all(pins):
            body["gpus"] = pins
        else:
            body["allow_remote"] = True
        return self._call("post", "/v1/allocations", body)

    def release(self, instance_uuid):
        """Delete every allocation of the instance; True when one existed."""
        found = self._call("get", "/v1/allocations", consumer=instance_uuid)["allocations"]
        for allocation in found:
            self._call("delete", "/v1/allocations/" + allocation["uuid"])
        return bool(found)
