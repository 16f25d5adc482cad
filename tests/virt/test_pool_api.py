"""The driver's orionx-api client logs in with its account and logs in
again when its token expires."""

import http.server
import json
import threading

import pytest

from orionx_nova.virt import pool_api


class _Api(http.server.BaseHTTPRequestHandler):
    issued = []
    valid = set()

    def log_message(self, *args):
        pass

    def _answer(self, status, body):
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if body != {"name": "nova-compute", "password": "secret"}:
            return self._answer(401, {"error": {"code": 401, "title": "Unauthorized",
                                                "message": "wrong name or password"}})
        token = "t%d" % len(self.issued)
        self.issued.append(token)
        self.valid.add(token)
        self._answer(201, {"token": token})

    def do_GET(self):
        token = self.headers.get("Authorization", "").removeprefix("Bearer ")
        if token not in self.valid:
            return self._answer(401, {"error": {"code": 401, "title": "Unauthorized",
                                                "message": "token expired"}})
        self._answer(200, {"gpus": [{"uuid": "GPU-1"}]})


@pytest.fixture
def api_url():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Api)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield "http://127.0.0.1:%d" % server.server_address[1]
    server.shutdown()
    server.server_close()


def test_logs_in_and_again_after_expiry(api_url):
    api = pool_api.PoolApi(api_url, "nova-compute", "secret")
    assert api.gpus_on("compute1") == [{"uuid": "GPU-1"}]
    _Api.valid.clear()  # every token expired
    assert api.gpus_on("compute1") == [{"uuid": "GPU-1"}]
    assert len(_Api.issued) == 2


def test_a_wrong_password_is_reported(api_url):
    api = pool_api.PoolApi(api_url, "nova-compute", "wrong")
    with pytest.raises(pool_api.PoolApiError, match="wrong name or password"):
        api.gpus_on("compute1")
