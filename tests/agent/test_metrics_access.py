"""Who may read the agent's /metrics, and what it tells them: loopback by
default, a bearer token for any other address, and no allocation ids
unless asked for."""

import types
import urllib.error
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from orionx_agent.agent.metrics import MetricsServer, metrics_address

USAGE = {"gpu": {"device_busy_pct": 50, "sessions": 1},
         "sessions": [{"session_id": 7, "allocation_id": "secret-alloc-uuid",
                       "vgpu_id": "secret-vgpu-uuid", "device_time_s": 1.5,
                       "memory_mb": 64, "compute_pct": 25}]}


def _agent():
    server = types.SimpleNamespace(control=lambda: types.SimpleNamespace(usage=lambda: USAGE))
    return types.SimpleNamespace(supervisor=types.SimpleNamespace(servers={"GPU-1": server}),
                                 gateway=types.SimpleNamespace(handed_over=1, relayed=0))


@pytest.fixture
def serve():
    started = []

    def start(listen="0", token="", allocation_labels=False):
        server = MetricsServer(_agent(), listen, token, allocation_labels)
        server.start()
        started.append(server)
        return "http://%s:%d/metrics" % (server.host, server.port)
    yield start
    for server in started:
        server.stop()


def _get(url, token=None):
    request = urllib.request.Request(url)
    if token:
        request.add_header("Authorization", "Bearer %s" % token)
    with urllib.request.urlopen(request, timeout=5) as response:
        return response.read().decode()


def test_a_bare_port_listens_on_loopback_only():
    assert metrics_address("9187", "") == ("127.0.0.1", 9187)
    assert metrics_address(":9187", "") == ("127.0.0.1", 9187)
    assert metrics_address("[::1]:9187", "") == ("::1", 9187)


@pytest.mark.parametrize("listen", ["0.0.0.0:9187", "10.0.0.5:9187", "metrics.example:9187"])
def test_an_address_others_reach_needs_a_token(listen):
    with pytest.raises(ValueError, match="metrics_token"):
        metrics_address(listen, "")
    assert metrics_address(listen, "t0ken")[1] == 9187


def test_the_token_is_required_when_set(serve):
    url = serve(token="s3cret")
    for wrong in (None, "guess"):
        with pytest.raises(urllib.error.HTTPError) as caught:
            _get(url, wrong)
        assert caught.value.code == 401
    assert "orionx_session_device_time_seconds" in _get(url, "s3cret")


def test_no_allocation_ids_by_default(serve):
    text = _get(serve())
    assert "secret-alloc-uuid" not in text and "secret-vgpu-uuid" not in text
    samples = [s for f in text_string_to_metric_families(text) for s in f.samples
               if s.name == "orionx_session_device_time_seconds_total"]
    assert samples[0].labels == {"gpu": "GPU-1", "session": "7"}
    assert samples[0].value == 1.5


def test_allocation_labels_when_asked_for(serve):
    text = _get(serve(allocation_labels=True))
    assert 'allocation="secret-alloc-uuid"' in text and 'vgpu="secret-vgpu-uuid"' in text
