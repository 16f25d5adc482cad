"""A thin Placement REST client on keystoneauth, configured by the usual
``[placement]`` auth, session and adapter options.

Every request names the microversion it needs; the provider-level helpers
retry writes that lost a generation race (Placement's optimistic
concurrency) after re-reading the provider.
"""

from keystoneauth1 import exceptions as ks_exceptions
from keystoneauth1 import loading as ks_loading
from oslo_log import log as logging

from orionx_nova.conf import CONF
from orionx_nova.conf import placement as placement_opts

LOG = logging.getLogger(__name__)

# 1.38: consumer types on allocations; everything else used here is older.
MICROVERSION = "1.38"
GROUP = "placement"
CONCURRENT_UPDATE = "placement.concurrent_update"
PROVIDER_IN_USE = "placement.resource_provider.in_use"
INVENTORY_IN_USE = "placement.inventory.inuse"


class PlacementError(Exception):
    """Placement refused a request (``status``, Placement's error ``code``)
    or could not be reached (``status`` None)."""

    def __init__(self, method, url, status, code, detail):
        super().__init__(
            "Placement %s %s answered %s%s: %s"
            % (method, url, status, " (%s)" % code if code else "", detail)
        )
        self.status = status
        self.code = code
        self.detail = detail


class GenerationConflict(PlacementError):
    """Someone else changed the provider (or consumer) since we read it."""


def _error_of(response):
    try:
        error = response.json()["errors"][0]
        return error.get("code"), error.get("detail", response.text)
    except (ValueError, KeyError, IndexError, TypeError):
        return None, response.text


def load_adapter(conf=CONF):
    """A keystoneauth Adapter for Placement from ``[placement]``."""
    auth = ks_loading.load_auth_from_conf_options(conf, GROUP)
    session = ks_loading.load_session_from_conf_options(conf, GROUP, auth=auth)
    group = conf[GROUP]
    return ks_loading.load_adapter_from_conf_options(
        conf, GROUP, session=session, auth=auth,
        service_type=group.service_type or placement_opts.SERVICE_TYPE,
        interface=group.valid_interfaces or placement_opts.VALID_INTERFACES)


class PlacementClient:
    def __init__(self, adapter=None):
        self._adapter = adapter or load_adapter()

    def request(self, method, url, body=None, ok=(200, 201, 204)):
        """JSON answer of one request (None when empty); PlacementError or
        GenerationConflict when the status is not one of ``ok``."""
        kwargs = {"microversion": MICROVERSION, "raise_exc": False}
        if body is not None:
            kwargs["json"] = body
        try:
            response = self._adapter.request(url, method, **kwargs)
        except ks_exceptions.ClientException as exc:
            raise PlacementError(method, url, None, None,
                                 "%s; check [placement] in orionx.conf" % exc) from None
        if response.status_code in ok:
            return response.json() if response.content else None
        code, detail = _error_of(response)
        error = GenerationConflict if code == CONCURRENT_UPDATE else PlacementError
        raise error(method, url, response.status_code, code, detail)

    def get(self, url, ok=(200,)):
        return self.request("GET", url, ok=ok)

    def get_or_none(self, url):
        try:
            return self.get(url)
        except PlacementError as exc:
            if exc.status == 404:
                return None
            raise

    def put(self, url, body=None, ok=(200, 201, 204)):
        return self.request("PUT", url, body, ok=ok)

    def post(self, url, body, ok=(200, 201, 204)):
        return self.request("POST", url, body, ok=ok)

    def delete(self, url, ok=(204, 404)):
        return self.request("DELETE", url, ok=ok)
