"""The protocol table: its invariants, the codec, and its documentation."""

import pathlib

import pytest

from guest_runtime import protocol
from guest_runtime.protocol import ProtocolError
from orionx_agent import frames
from tools import protocol_doc

DOC = pathlib.Path(__file__).resolve().parents[2] / "docs" / "protocol.md"


def test_header_is_16_bytes():
    assert protocol.HEADER_BYTES == 16


def test_names_and_opcodes_are_unique():
    assert len({op.name for op in protocol.OPS.values()}) == len(protocol.OPS)
    assert all(0 < opcode <= 0xFFFF for opcode in protocol.OPS)


def test_formats_are_little_endian_and_fields_are_named():
    for op in protocol.OPS.values():
        assert op.request.format.startswith("<") and op.reply.format.startswith("<")
        assert len(op.request_fields) == len(op.request.format) - 1
        assert len(op.reply_fields) == len(op.reply.format) - 1


def test_the_op_table_in_the_docs_is_current():
    text = DOC.read_text()
    assert protocol_doc.render(text) == text, (
        "docs/protocol.md's op table is stale: regenerate it with python -m tools.protocol_doc")


def test_the_doc_check_notices_a_new_row(monkeypatch, capsys):
    """A row added to the table and not to the page makes the check fail."""
    row = protocol._op(0x0070, "CTX_GET_FLAGS", "", "flags:I", cacheable=True)
    monkeypatch.setitem(protocol.OPS, row.opcode, row)
    assert "| 0x0070 | CTX_GET_FLAGS | — | flags I | — | sync | cached |" in \
        protocol_doc.op_table()
    assert protocol_doc.main(["--check"]) == 1
    assert "stale" in capsys.readouterr().err


def test_every_call_has_a_server_handler_and_only_calls_do():
    from orionx_agent.server.session import Session
    missing = [op.name for op in protocol.OPS.values()
               if op.is_call and not hasattr(Session, op.handler_name)]
    assert missing == []
    assert [op.name for op in protocol.OPS.values() if not op.is_call] == [
        "HELLO", "SHM_ATTACH", "SESSION_ENDED"]


def test_every_op_a_client_sends_has_a_client_stub():
    from guest_runtime.client import Connection
    for op in protocol.OPS.values():
        assert hasattr(Connection, op.name.lower()) == (
            op.sent_by == protocol.SENT_BY_CLIENT), op.name


def test_an_op_only_the_server_sends_is_refused_from_a_client():
    assert protocol.SESSION_ENDED.sent_by == protocol.SENT_BY_SERVER
    with pytest.raises(ProtocolError, match="unknown opcode 0xffff"):
        frames.lookup(protocol.SESSION_ENDED.opcode)


def test_ops_on_device_memory_are_the_copies_memsets_and_launches():
    touching = {op.name for op in protocol.OPS.values() if op.touches_device_memory}
    assert touching == {"MEMCPY_HTOD", "MEMCPY_HTOD_ASYNC", "MEMCPY_DTOH", "MEMCPY_DTOD",
                        "MEMCPY_DTOD_ASYNC", "MEMSET_D8", "MEMSET_D8_ASYNC", "MEMSET_D32",
                        "MEMSET_D32_ASYNC", "MEMSET_D16", "MEMSET_D16_ASYNC", "LAUNCH_KERNEL"}


def test_request_round_trip():
    op = protocol.OPS_BY_NAME["MEMCPY_HTOD_ASYNC"]
    frame = protocol.encode_request(op, 42, (0x1000, 3), buffer_bytes=100)
    flags, opcode, request_id, payload = protocol.parse_header(frame[:16])
    assert (flags, opcode, request_id, payload) == (0, op.opcode, 42, op.request.size + 100)
    assert frames.check_request_length(op, payload) == 100
    assert op.request.unpack(frame[16:]) == (0x1000, 3)


@pytest.mark.parametrize("name, payload, words", [
    ("MEM_ALLOC", 4, "shorter"),
    ("MEM_ALLOC", 9, "takes no buffer"),
    ("LAUNCH_KERNEL", 44 + 5000, "exceeds its limit"),
])
def test_bad_request_lengths(name, payload, words):
    with pytest.raises(ProtocolError, match=words):
        frames.check_request_length(protocol.OPS_BY_NAME[name], payload)


def test_bad_header():
    with pytest.raises(ProtocolError, match="magic"):
        protocol.parse_header(b"\0" * 16)
    with pytest.raises(ProtocolError, match="version"):
        protocol.parse_header(protocol.HEADER.pack(protocol.MAGIC, 9, 0, 1, 0, 0))
    with pytest.raises(ProtocolError, match="unknown opcode"):
        frames.lookup(0x7777)


def test_error_frame_layout():
    """Header, then the status, then the UTF-8 message: what the client reads."""
    frame = frames.encode_error(0x20, 7, 2, "quota")
    flags, opcode, request_id, payload_bytes = protocol.parse_header(frame[:16])
    assert (opcode, flags & protocol.FLAG_REPLY, request_id) == (0x20, protocol.FLAG_REPLY, 7)
    (status,) = protocol.STATUS.unpack_from(frame, 16)
    assert status == 2 and frame[16 + protocol.STATUS.size:] == b"quota"
    assert payload_bytes == len(frame) - 16
