"""Alert rules, their cooldown, and the webhook against a real HTTP server."""

import datetime
import http.server
import json
import threading

import pytest
import sqlalchemy as sa

from orionx_nova.alerts import checker, rules, webhook
from orionx_nova.conf import CONF
from orionx_nova.db import api as db_api
from orionx_nova.db import models
from orionx_nova.objects import allocations, events, measured_usage
from tests.api import pool as api_pool


@pytest.fixture
def pool(tmp_path):
    with api_pool.make_pool(tmp_path) as made:
        # Only the rule under test fires unless a test turns others on.
        for option, off in (("gpu_memory_used_pct", 0), ("node_down", False),
                            ("queue_wait_s", 0), ("gpu_server_restarts", 0)):
            CONF.set_override(option, off, group="alerts")
        yield made
        CONF.clear_override("webhook_url", group="alerts")


def _turn_on(option, value):
    CONF.set_override(option, value, group="alerts")


def _alert_events():
    return [e for e in events.list(limit=1000) if e["kind"].startswith("alert.")]


def _evaluate(rule):
    with db_api.transaction() as session:
        return rule(session, models.utcnow())


def test_gpu_memory_rule_uses_allocated_memory_without_agents(pool):
    _turn_on("gpu_memory_used_pct", 50)
    placed = allocations.create({"vgpus": [{"compute_pct": 10, "memory_mb": 9000}]},
                                project_id="alpha")
    found = _evaluate(rules.gpu_memory_used)
    assert [a["object_uuid"] for a in found] == [placed["vgpus"][0]["gpu_uuid"]]
    assert "9000 of 16384 MB memory allocated" in found[0]["message"]
    assert found[0]["level"] == "warning"


def test_gpu_memory_rule_prefers_measured_memory(pool):
    _turn_on("gpu_memory_used_pct", 50)
    placed = allocations.create({"vgpus": [{"compute_pct": 10, "memory_mb": 9000}]},
                                project_id="alpha")
    vgpu = placed["vgpus"][0]
    measured_usage.remember(vgpu["node"], {"gpus": [{"uuid": vgpu["gpu_uuid"],
                                                     "measured_memory_mb": 1000}]})
    assert _evaluate(rules.gpu_memory_used) == []
    measured_usage.remember(vgpu["node"], {"gpus": [{"uuid": vgpu["gpu_uuid"],
                                                     "measured_memory_mb": 15000}]})
    assert "measured" in _evaluate(rules.gpu_memory_used)[0]["message"]


def test_node_down_rule(pool):
    _turn_on("node_down", True)
    assert _evaluate(rules.node_down) == []
    with db_api.transaction() as session:
        session.execute(sa.update(models.Node.__table__)
                        .where(models.Node.__table__.c.hostname == "host-b")
                        .values(state="down"))
    found = _evaluate(rules.node_down)
    assert [(a["object_uuid"], a["level"]) for a in found] == [(pool.ids["node_b"], "error")]
    assert "host-b" in found[0]["message"]


def test_queue_wait_rule(pool):
    _turn_on("queue_wait_s", 60)
    whole = {"native": True, "count": 1}
    for gpu in ("gpu_a0", "gpu_a1", "gpu_b0", "gpu_b1"):
        pool.client.patch("/v1/gpus/" + pool.ids[gpu], json={"mode": "native"},
                          headers=pool.headers("admin"))
    for _ in range(4):
        allocations.create(dict(whole), project_id="alpha")
    waiting = allocations.create(dict(whole), project_id="alpha")
    assert waiting["state"] == "queued"
    assert _evaluate(rules.queue_wait) == []
    with db_api.transaction() as session:
        table = models.Allocation.__table__
        session.execute(sa.update(table).where(table.c.uuid == waiting["uuid"]).values(
            created_at=models.utcnow() - datetime.timedelta(seconds=61)))
    found = _evaluate(rules.queue_wait)
    assert [a["object_uuid"] for a in found] == [waiting["uuid"]]
    assert "above the alert limit of 60 s" in found[0]["message"]


def _server_exited(gpu_uuid, times, ago_s=0):
    with db_api.transaction() as session:
        for _ in range(times):
            session.execute(sa.insert(models.Event.__table__).values(
                created_at=models.utcnow() - datetime.timedelta(seconds=ago_s),
                level="error", object_type="gpu", object_uuid=gpu_uuid,
                kind=rules.SERVER_EXITED_KIND, message="exited"))


def test_gpu_server_restarts_rule_counts_exits_in_the_window(pool):
    _turn_on("gpu_server_restarts", 3)
    _turn_on("gpu_server_restarts_window_s", 600)
    gpu = pool.ids["gpu_a1"]
    _server_exited(gpu, 2)
    _server_exited(gpu, 5, ago_s=601)
    assert _evaluate(rules.gpu_server_restarts) == []
    _server_exited(gpu, 1)
    found = _evaluate(rules.gpu_server_restarts)
    assert [(a["object_uuid"], a["level"]) for a in found] == [(gpu, "error")]
    assert "exited 3 times in the last 600 s" in found[0]["message"]


def test_checker_records_events_and_respects_cooldown(pool):
    _turn_on("node_down", True)
    _turn_on("cooldown_s", 900)
    with db_api.transaction() as session:
        session.execute(sa.update(models.Node.__table__).values(state="down"))
    raised = checker.check()
    assert sorted(a["kind"] for a in raised) == ["alert.node_down"] * 2
    assert checker.check() == []
    later = models.utcnow() + datetime.timedelta(seconds=901)
    assert len(checker.check(now=later)) == 2
    assert [e["level"] for e in _alert_events()] == ["error"] * 4


class _Collector(http.server.BaseHTTPRequestHandler):
    received = []
    status = 204

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append((self.headers["Content-Type"], json.loads(body)))
        self.send_response(type(self).status)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def webhook_server():
    _Collector.received = []
    _Collector.status = 204
    server = http.server.HTTPServer(("127.0.0.1", 0), _Collector)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield "http://127.0.0.1:%d/hook" % server.server_address[1]
    server.shutdown()
    server.server_close()


def test_checker_posts_alerts_to_the_webhook(pool, webhook_server):
    _turn_on("node_down", True)
    _turn_on("webhook_url", webhook_server)
    with db_api.transaction() as session:
        session.execute(sa.update(models.Node.__table__)
                        .where(models.Node.__table__.c.hostname == "host-a")
                        .values(state="down"))
    checker.check()
    assert len(_Collector.received) == 1
    content_type, alert = _Collector.received[0]
    assert content_type == "application/json"
    assert alert["kind"] == "alert.node_down"
    assert alert["object_uuid"] == pool.ids["node_a"]
    assert alert["level"] == "error" and "host-a" in alert["message"]


def test_webhook_failures_are_logged_not_raised(webhook_server, caplog):
    alert = {"kind": "alert.node_down"}
    _Collector.status = 500
    assert webhook.post(webhook_server, alert, 2) is False
    # Nothing listens on the port once the server is gone: connection refused.
    assert webhook.post("http://127.0.0.1:9/", alert, 1) is False
    assert "failed" in caplog.text or "HTTP 500" in caplog.text
    _Collector.status = 200
    assert webhook.post(webhook_server, alert, 2) is True
