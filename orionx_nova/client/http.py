"""A small HTTP client of the ``/v1`` API on the standard library only, so
the CLI installs anywhere the controller's Python does."""

import json
import urllib.error
import urllib.parse
import urllib.request

DEFAULT_URL = "http://127.0.0.1:8700"
DEFAULT_TIMEOUT_S = 30


class ApiError(Exception):
    """The API refused a request (``code`` is the HTTP status) or could not
    be reached (``code`` is None); ``message`` is what to show the user."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code = code
        self.message = message


class ApiClient:
    def __init__(self, url=DEFAULT_URL, token=None, timeout_s=DEFAULT_TIMEOUT_S):
        self.url = url.rstrip("/")
        self.token = token
        self.timeout_s = timeout_s

    def _full_url(self, path, query):
        url = self.url + path
        params = {k: v for k, v in (query or {}).items() if v is not None}
        if params:
            url += "?" + urllib.parse.urlencode(params)
        return url

    def request(self, method, path, body=None, query=None):
        """Send one request; return the decoded JSON answer (None for 204)."""
        data = None
        headers = {"Accept": "application/json"}
        if body is not None:
            data = json.dumps(body).encode("utf-8")
            headers["Content-Type"] = "application/json"
        if self.token:
            headers["Authorization"] = "Bearer " + self.token
        request = urllib.request.Request(self._full_url(path, query), data=data,
                                         headers=headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                payload = response.read()
        except urllib.error.HTTPError as exc:
            raise ApiError(exc.code, _error_message(exc)) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ApiError(None, "Cannot reach the OrionX API at %s: %s; check --url "
                           "or ORIONX_URL and that orionx-api runs" % (self.url, reason)) from None
        if not payload:
            return None
        return json.loads(payload)

    def get(self, path, **query):
        return self.request("GET", path, query=query)

    def post(self, path, body=None):
        return self.request("POST", path, body=body)

    def patch(self, path, body):
        return self.request("PATCH", path, body=body)

    def delete(self, path):
        return self.request("DELETE", path)


def _error_message(exc):
    """The API's own message from an error answer, else the HTTP reason."""
    try:
        error = json.loads(exc.read())["error"]
        return "%s (HTTP %s %s)" % (error["message"], error["code"], error["title"])
    except (ValueError, KeyError, TypeError):
        return "HTTP %s %s from %s" % (exc.code, exc.reason, exc.url)
