"""The few REST calls the guest runtime makes on the controller's API, with
the standard library only (a guest has nothing else installed).

Credentials come from the environment: ``ORIONX_AUTH_TOKEN`` (a bearer token
from ``POST /v1/auth/tokens``, or a Keystone token with
``ORIONX_AUTH_HEADER=X-Auth-Token``) and, for development pools without
authentication, ``ORIONX_PROJECT_ID``.
"""

import json
import os
import urllib.error
import urllib.request

from guest_runtime.curesult import CudaError, CUresult

TIMEOUT_S = 30


class ControllerError(CudaError):
    """The controller refused or failed a call; ``status`` is its HTTP status."""

    def __init__(self, status, message):
        super().__init__(CUresult.CUDA_ERROR_NO_DEVICE, message)
        self.status = status


class ControllerAPI:
    def __init__(self, url, auth_token=None, project_id=None):
        self.url = url.rstrip("/")
        self.auth_token = auth_token if auth_token is not None else os.environ.get(
            "ORIONX_AUTH_TOKEN")
        self.auth_header = os.environ.get("ORIONX_AUTH_HEADER", "Authorization")
        self.project_id = project_id or os.environ.get("ORIONX_PROJECT_ID")

    def _headers(self):
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.auth_token:
            headers[self.auth_header] = ("Bearer " + self.auth_token
                                         if self.auth_header == "Authorization"
                                         else self.auth_token)
        if self.project_id:
            headers["X-Project-Id"] = self.project_id
        return headers

    def request(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.url + path, data=data, method=method,
                                         headers=self._headers())
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
                raw = response.read()
        except urllib.error.HTTPError as exc:
            raise ControllerError(exc.code, "%s %s: %s" % (method, path, _message(exc))) from None
        except (urllib.error.URLError, OSError) as exc:
            raise ControllerError(None, "the OrionX controller at %s is unreachable (%s): "
                                  "check --controller / ORIONX_CONTROLLER"
                                  % (self.url, getattr(exc, "reason", exc))) from None
        return json.loads(raw) if raw else None

    def create_allocation(self, body):
        return self.request("POST", "/v1/allocations", body)

    def get_allocation(self, uuid):
        return self.request("GET", "/v1/allocations/%s" % uuid)

    def delete_allocation(self, uuid):
        return self.request("DELETE", "/v1/allocations/%s" % uuid)

    def bind(self, uuid):
        return self.request("POST", "/v1/allocations/%s/bind" % uuid, {})

    def unbind(self, uuid):
        return self.request("POST", "/v1/allocations/%s/unbind" % uuid, {})

    def session(self, uuid, host=None):
        return self.request("POST", "/v1/allocations/%s/session" % uuid,
                            {"host": host} if host else {})


def _message(http_error):
    try:
        body = json.loads(http_error.read())
        return body["error"]["message"]
    except (ValueError, KeyError, TypeError, OSError):
        return "HTTP %d %s" % (http_error.code, http_error.reason)
