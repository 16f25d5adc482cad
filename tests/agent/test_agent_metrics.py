"""The agent's /metrics, scraped from a running all-in-one pool while a job
runs: per-session device time, memory and data-plane bytes, per-GPU
figures and the gateway's routed connections."""

import subprocess
import sys
import time
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

from tests.functional.test_allinone import BIN, REPO, AllInOne


def _scrape(url):
    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode()
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append(sample)
    return samples


def test_agent_metrics_show_a_live_session(tmp_path):
    pool = AllInOne(tmp_path / "state")
    metrics_url = "http://127.0.0.1:%d/metrics" % (pool.port + 2)
    job = subprocess.Popen(
        [str(BIN / "orionx-run"), "--controller", pool.url, "--compute-pct", "40",
         "--memory-mb", "256", "--", sys.executable, "examples/throughput.py", "--seconds", "5"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 30
        samples = {}
        while time.monotonic() < deadline:
            samples = _scrape(metrics_url)
            times = samples.get("orionx_session_device_time_seconds_total", [])
            if times and times[0].value > 0:
                break
            time.sleep(0.5)
        session = samples["orionx_session_device_time_seconds_total"][0]
        assert session.value > 0
        assert session.labels["gpu"] == pool.gpus[0]["uuid"]
        share = samples["orionx_session_compute_share_ratio"][0]
        assert abs(share.value - 0.40) < 1e-9
        # The job copied its matrix in: data-plane bytes were counted.
        assert samples["orionx_session_dataplane_to_device_bytes_total"][0].value > 0
        assert samples["orionx_session_memory_quota_bytes"][0].value == 256 << 20
        handed = {s.labels["path"]: s.value
                  for s in samples["orionx_gateway_connections_total"]}
        assert handed["handed_over"] >= 1 and handed["relayed"] == 0
        assert 0 <= samples["orionx_gpu_device_busy_ratio"][0].value <= 1
    finally:
        output, _ = job.communicate(timeout=60)
        assert pool.stop() == 0
    assert job.returncode == 0, output
