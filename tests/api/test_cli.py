"""The ``orionx`` CLI against a live orionx-api (waitress on a free
loopback port, in a thread of the test process)."""

import json
import threading
import time

import pytest
import waitress

from orionx_nova.client import http as api_http
from orionx_nova.cmd import cli
from tests.api import pool as test_pool


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    with test_pool.make_pool(tmp_path_factory.mktemp("cli")) as pool:
        server = waitress.create_server(pool.app, host="127.0.0.1", port=0, threads=4)
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        pool.url = "http://127.0.0.1:%s" % server.effective_port
        try:
            yield pool
        finally:
            server.close()
            thread.join(timeout=5)


@pytest.fixture
def orionx(live, capsys):
    """``orionx(who, *args)`` -> (exit code, stdout, stderr)."""
    def run(who, *args):
        argv = ["--url", live.url]
        if who:
            argv += ["--token", live.tokens[who]]
        code = cli.main(argv + list(args))
        out, err = capsys.readouterr()
        return code, out, err
    return run


def _json(orionx, who, *args):
    code, out, err = orionx(who, "--format", "json", *args)
    assert code == 0, err
    return json.loads(out)


def test_gpu_list_is_a_table(orionx):
    code, out, _err = orionx("viewer", "gpu", "list")
    assert code == 0
    header = out.splitlines()[0]
    assert header.split()[:3] == ["UUID", "NODE", "INDEX"]
    assert out.count("SIM-16G") == 4


def test_gpu_list_json_and_filters(orionx):
    assert len(_json(orionx, "viewer", "gpu", "list", "--node", "host-b")) == 2
    assert _json(orionx, "viewer", "gpu", "list", "--pool", "native") == []


def test_node_list_and_gpu_show(orionx, live):
    code, out, _err = orionx("viewer", "node", "list")
    assert code == 0 and "host-a" in out and "host-b" in out
    shown = _json(orionx, "viewer", "gpu", "show", live.ids["gpu_a1"])
    assert shown["uuid"] == live.ids["gpu_a1"]


def test_set_mode_needs_an_admin(orionx, live):
    gpu = live.ids["gpu_b1"]
    code, out, err = orionx("viewer", "gpu", "set-mode", gpu, "native")
    assert code == 1 and out == ""
    assert "orionx:gpus:set_mode" in err and "HTTP 403" in err
    assert _json(orionx, "admin", "gpu", "set-mode", gpu, "native")["pool"] == "native"
    assert _json(orionx, "admin", "gpu", "set-mode", gpu, "orionx")["pool"] == "orionx"


def test_allocation_lifecycle(orionx):
    created = _json(orionx, "operator", "alloc", "create", "--vgpu", "25:4096",
                    "--vgpu", "25:4096", "--consumer", "vm-cli", "--priority", "70")
    uuid = created["uuid"]
    assert created["state"] == "active" and len(created["vgpus"]) == 2

    code, out, _err = orionx("viewer", "alloc", "list", "--consumer", "vm-cli")
    assert code == 0 and uuid in out and "25%/4096MB 25%/4096MB" in out

    code, out, _err = orionx("viewer", "alloc", "show", uuid)
    assert code == 0 and "vm-cli" in out and "COMPUTE %" in out

    resized = _json(orionx, "operator", "alloc", "resize", uuid, "--vgpu", "1=40:2048")
    assert [(v["compute_pct"], v["memory_mb"]) for v in resized["vgpus"]] == [
        (25, 4096), (40, 2048)]

    code, out, _err = orionx("operator", "alloc", "delete", uuid)
    assert code == 0 and "Deleted allocation %s" % uuid in out
    code, _out, err = orionx("operator", "alloc", "show", uuid)
    assert code == 1 and "HTTP 404" in err


def test_acquire_bind_unbind(orionx):
    created = _json(orionx, "operator", "alloc", "create", "--mode", "acquire",
                    "--vgpu", "10:1024")
    uuid = created["uuid"]
    assert _json(orionx, "operator", "alloc", "bind", uuid)["vgpus"][0]["gpu_uuid"]
    assert _json(orionx, "operator", "alloc", "unbind", uuid)["vgpus"][0]["gpu_uuid"] is None
    assert orionx("operator", "alloc", "delete", uuid)[0] == 0


def test_identical_vgpus_with_compute_pct_memory_mb_count(orionx):
    created = _json(orionx, "operator", "alloc", "create", "--compute-pct", "15",
                    "--memory-mb", "512", "--count", "2")
    assert [(v["compute_pct"], v["memory_mb"]) for v in created["vgpus"]] == [
        (15, 512), (15, 512)]
    assert orionx("operator", "alloc", "delete", created["uuid"])[0] == 0

    code, _out, err = orionx("operator", "alloc", "create", "--compute-pct", "15")
    assert code == 2 and "--compute-pct and --memory-mb go together" in err
    code, _out, err = orionx("operator", "alloc", "create", "--compute-pct", "15",
                             "--memory-mb", "512", "--vgpu", "10:10")
    assert code == 2 and "either --vgpu" in err


@pytest.mark.parametrize("command", [["alloc", "create"], ["alloc", "resize", "u"],
                                     ["vgpu", "attach", "dom"]])
def test_size_flags_are_spelt_once_with_the_old_ones_hidden(command, capsys):
    parser = cli.build_parser()
    with pytest.raises(SystemExit):
        parser.parse_args(command + ["--help"])
    usage = capsys.readouterr().out
    assert "--compute-pct" in usage and "--memory-mb" in usage
    assert "--compute " not in usage and "--memory " not in usage
    # The spelling of the previous release still works, for one release.
    args = parser.parse_args(command + ["--compute", "20", "--memory", "256"])
    assert (args.compute_pct, args.memory_mb) == (20, 256)


def test_vgpu_attach_needs_both_sizes(orionx):
    code, _out, err = orionx(None, "vgpu", "--agent-socket", "/nonexistent", "attach", "dom",
                             "--compute-pct", "20")
    assert code == 2 and "--compute-pct PCT and --memory-mb MB" in err


def test_api_errors_are_printed_with_their_message(orionx):
    code, out, err = orionx("operator", "alloc", "create", "--vgpu", "120:1024")
    assert code == 1 and out == ""
    assert "vgpus[0].compute_pct: 120 is greater than the maximum of 100" in err


def test_usage_errors_are_caught_before_sending(orionx):
    code, _out, err = orionx("operator", "alloc", "create")
    assert code == 2 and "--vgpu" in err
    code, _out, err = orionx("operator", "alloc", "create", "--vgpu", "lots")
    assert code == 2 and "COMPUTE_PCT:MEMORY_MB" in err


def test_unreachable_api_is_reported(capsys):
    code = cli.main(["--url", "http://127.0.0.1:9", "gpu", "list"])
    err = capsys.readouterr().err
    assert code == 1 and "Cannot reach the OrionX API at http://127.0.0.1:9" in err


def test_create_wait_shows_the_queue_position(orionx, live):
    full = _json(orionx, "operator", "alloc", "create", *["--vgpu", "100:1024"] * 4)
    admin = api_http.ApiClient(live.url, token=live.tokens["admin"])

    def free_the_pool():
        # Wait until the CLI's request is queued, then release the capacity.
        deadline = time.monotonic() + 10
        while not admin.get("/v1/queue")["queue"] and time.monotonic() < deadline:
            time.sleep(0.05)
        admin.delete("/v1/allocations/%s" % full["uuid"])

    helper = threading.Thread(target=free_the_pool)
    helper.start()
    code, out, err = orionx("operator", "--format", "json", "alloc", "create", "--vgpu",
                            "50:1024", "--wait", "--poll-interval", "0.1",
                            "--wait-timeout", "20")
    helper.join()
    assert code == 0, err
    assert "is queued at position 1" in err
    placed = json.loads(out)
    assert placed["state"] == "active" and "is active" in err
    assert orionx("operator", "alloc", "delete", placed["uuid"])[0] == 0


def test_queue_event_and_summary_commands(orionx):
    for args in (["queue", "list"], ["event", "list", "--limit", "5"], ["summary"]):
        code, out, err = orionx("viewer", *args)
        assert code == 0, err
        assert out.strip()


def test_token_issue_gives_a_working_token(live, capsys, monkeypatch):
    monkeypatch.setenv("ORIONX_PASSWORD", test_pool.PASSWORD)
    assert cli.main(["--url", live.url, "token", "issue", "viewer"]) == 0
    line = capsys.readouterr().out
    token = line.split("ORIONX_TOKEN=")[1].split()[0]
    assert cli.main(["--url", live.url, "--token", token, "gpu", "list"]) == 0


def test_user_commands(orionx, monkeypatch):
    monkeypatch.setenv("ORIONX_NEW_PASSWORD", "long enough secret")
    code, out, err = orionx("admin", "user", "create", "dora", "--role", "viewer",
                            "--project", "alpha")
    assert code == 0, err
    assert "dora" in out and "alpha" in out
    code, out, _ = orionx("admin", "user", "list")
    assert code == 0 and "LOCKED UNTIL" in out.splitlines()[0]
    assert any(line.split()[:3] == ["dora", "viewer", "alpha"] for line in out.splitlines())
    code, out, _ = orionx("admin", "--format", "json", "user", "set-role", "dora", "operator")
    assert code == 0 and json.loads(out)["role"] == "operator"
    code, out, _ = orionx("admin", "--format", "json", "user", "unlock", "dora")
    assert code == 0 and json.loads(out)["locked_until"] is None
    code, _, err = orionx("operator", "user", "list")
    assert code == 1 and "orionx:users:list" in err
    code, out, _ = orionx("admin", "user", "delete", "dora")
    assert code == 0 and "Deleted user dora" in out
    code, _, err = orionx("admin", "user", "delete", "dora")
    assert code == 1 and "User dora not found" in err
