"""The CLI's helpers without a server: argument parsing, tables, waiting."""

import io

import pytest

from orionx_nova.client import commands, formatting


def test_parse_vgpu_accepts_units():
    assert commands.parse_vgpu("25:4096") == {"compute_pct": 25, "memory_mb": 4096}
    assert commands.parse_vgpu("25%:4096MB") == {"compute_pct": 25, "memory_mb": 4096}
    with pytest.raises(commands.UsageError, match="COMPUTE_PCT:MEMORY_MB"):
        commands.parse_vgpu("25")


def test_table_aligns_and_marks_empty():
    text = formatting.table([{"a": 1, "b": None}, {"a": 22, "b": True}], [("A", "a"), ("B", "b")])
    assert text.splitlines() == ["A   B", "--  ---", "1   -", "22  yes"]
    assert formatting.table([], [("A", "a")]).endswith("(none)")


class _QueuedForever:
    def __init__(self):
        self.positions = iter([3, 2, 2, 2, 2, 2])

    def get(self, path):
        return {"uuid": "u1", "state": "queued", "queue_position": next(self.positions)}


def test_wait_reports_position_changes_and_times_out():
    now = [0.0]
    out = io.StringIO()
    with pytest.raises(TimeoutError, match="still queued at position 2 after 3 s"):
        commands.wait_until_placed(
            _QueuedForever(), {"uuid": "u1", "state": "queued", "queue_position": 4},
            timeout_s=3, poll_interval_s=1, out=out,
            sleep=lambda s: now.__setitem__(0, now[0] + s), clock=lambda: now[0])
    lines = out.getvalue().splitlines()
    assert [line.rsplit(" ", 1)[1] for line in lines] == ["4", "3", "2"]


def test_fields_flattens_nested_objects():
    text = formatting.fields({"pools": {"orionx": {"gpus": 4}}, "queue_length": 0})
    assert text.splitlines()[2:] == ["pools.orionx.gpus  4", "queue_length       0"]
