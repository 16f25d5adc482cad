"""No request can crash the server: unexpected errors are logged and
answered as JSON 500s that name the request id to look for in the log."""

from orionx_nova.objects import summary
from tests.api import pool as test_pool


def test_unexpected_error_is_a_json_500(tmp_path, monkeypatch, caplog):
    def broken():
        raise RuntimeError("simulated bug")

    monkeypatch.setattr(summary, "get", broken)
    with test_pool.make_pool(tmp_path) as pool:
        response = pool.client.get("/v1/summary", headers=pool.headers("viewer"))
        request_id = response.headers["X-OpenStack-Request-Id"]
        # The server keeps serving after the failure.
        assert pool.client.get("/v1/gpus", headers=pool.headers("viewer")).status_code == 200
    assert response.status_code == 500
    error = response.json["error"]
    assert error["title"] == "Internal Server Error"
    assert request_id in error["message"]
    assert "simulated bug" not in error["message"]  # internals stay in the log
    assert "simulated bug" in caplog.text and request_id in caplog.text


def test_oversized_body_is_a_json_413(tmp_path):
    with test_pool.make_pool(tmp_path) as pool:
        response = pool.client.post(
            "/v1/allocations", data=b"[" + b"1," * 600000 + b"1]",
            content_type="application/json", headers=pool.headers("operator"))
    assert response.status_code == 413
    assert "larger than the limit of 1048576 bytes" in response.json["error"]["message"]
