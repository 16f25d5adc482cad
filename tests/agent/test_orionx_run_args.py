"""orionx-run's acquire-mode arguments, without a pool."""

import pytest

from guest_runtime import run


def test_compute_and_memory_go_together(capsys):
    with pytest.raises(SystemExit):
        run.main(["--compute-pct", "25", "--controller", "http://x", "--", "true"])
    assert "--compute-pct and --memory-mb go together" in capsys.readouterr().err


def test_controller_is_needed(capsys, monkeypatch):
    monkeypatch.delenv("ORIONX_CONTROLLER", raising=False)
    with pytest.raises(SystemExit):
        run.main(["--compute-pct", "25", "--memory-mb", "4096", "--", "true"])
    assert "--controller URL" in capsys.readouterr().err


def test_unreachable_controller_is_a_clear_error(capsys):
    status = run.main(["--compute-pct", "25", "--memory-mb", "64", "--controller",
                       "http://127.0.0.1:9", "--", "true"])
    assert status == 2
    assert "unreachable" in capsys.readouterr().err


def test_allocation_body():
    parser = run._parser()
    args = parser.parse_args(["--compute-pct", "25", "--memory-mb", "4096", "--count", "2",
                              "--priority", "70", "--can-preempt", "--", "x"])
    body = run._allocation_body(args, "host-a")
    assert body["vgpus"] == [{"compute_pct": 25, "memory_mb": 4096}] * 2
    assert (body["mode"], body["host"], body["priority"], body["can_preempt"]) == (
        "acquire", "host-a", 70, True)
    assert "preemptible" not in body


def test_the_old_flags_are_hidden_aliases(capsys):
    parser = run._parser()
    usage = parser.format_help()
    assert "--compute-pct" in usage and "--memory-mb" in usage
    assert "--compute " not in usage and "--memory " not in usage
    args = parser.parse_args(["--compute", "20", "--memory", "256", "--", "x"])
    assert run._allocation_body(args, "host-a")["vgpus"] == [
        {"compute_pct": 20, "memory_mb": 256}]
