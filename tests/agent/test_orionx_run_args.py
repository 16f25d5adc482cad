"""orionx-run's acquire-mode arguments, without a pool."""

import pytest

from guest_runtime import run


def test_compute_and_memory_go_together(capsys):
    with pytest.raises(SystemExit):
        run.main(["--compute", "25", "--controller", "http://x", "--", "true"])
    assert "--compute and --memory go together" in capsys.readouterr().err


def test_controller_is_needed(capsys, monkeypatch):
    monkeypatch.delenv("ORIONX_CONTROLLER", raising=False)
    with pytest.raises(SystemExit):
        run.main(["--compute", "25", "--memory", "4096", "--", "true"])
    assert "--controller URL" in capsys.readouterr().err


def test_unreachable_controller_is_a_clear_error(capsys):
    status = run.main(["--compute", "25", "--memory", "64", "--controller",
                       "http://127.0.0.1:9", "--", "true"])
    assert status == 2
    assert "unreachable" in capsys.readouterr().err


def test_allocation_body():
    parser = run._parser()
    args = parser.parse_args(["--compute", "25", "--memory", "4096", "--count", "2",
                              "--priority", "70", "--can-preempt", "--", "x"])
    body = run._allocation_body(args, "host-a")
    assert body["vgpus"] == [{"compute_pct": 25, "memory_mb": 4096}] * 2
    assert (body["mode"], body["host"], body["priority"], body["can_preempt"]) == (
        "acquire", "host-a", 70, True)
    assert "preemptible" not in body
