"""Write the op table of docs/protocol.md from the protocol table.

    python -m tools.protocol_doc          # rewrite the marked region
    python -m tools.protocol_doc --check  # exit 1 if the page is stale

Only the region between the two markers is generated; the prose around it
is written by hand. ``tests/dataplane/test_protocol.py`` fails when the
page and ``guest_runtime/protocol.py`` disagree.
"""

import pathlib
import sys

from guest_runtime import protocol

DOC = pathlib.Path(__file__).resolve().parents[1] / "docs" / "protocol.md"
BEGIN = "<!-- BEGIN GENERATED op table: python -m tools.protocol_doc -->"
END = "<!-- END GENERATED op table -->"

_SESSION_CONTROL = {
    protocol.SESSION_OPEN: "opens the session",
    protocol.SESSION_SWITCH_TRANSPORT: "switches the transport",
    protocol.SESSION_END: "ends the session",
}


def _fields(names, struct):
    codes = struct.format[1:]
    return ", ".join("%s %s" % pair for pair in zip(names, codes, strict=True)) or "—"


def _buffer(op):
    if op.buffer == protocol.BUF_NONE:
        text = "—"
    elif op.max_buffer_bytes == protocol.DEVICE_BOUNDED:
        text = "%s (%s; bounded by the allocation)" % (op.buffer, op.buffer_holds)
    elif op.max_buffer_bytes:
        text = "%s ≤ %d (%s)" % (op.buffer, op.max_buffer_bytes, op.buffer_holds)
    else:
        text = "%s (%s)" % (op.buffer, op.buffer_holds)
    if op.reply_fds:
        text += " (the reply carries %d fds as SCM_RIGHTS)" % op.reply_fds
    return text


def _kind(op):
    if op.sent_by == protocol.SENT_BY_SERVER:
        return "from the server"
    return "sync" if op.sync else "async"


def _properties(op):
    found = []
    if op.session_control:
        found.append(_SESSION_CONTROL[op.session_control])
    if op.cacheable:
        found.append("cached")
    if op.touches_device_memory:
        found.append("device memory")
    return ", ".join(found) or "—"


def op_table():
    """The generated region: the markers and the Markdown table between them."""
    lines = [BEGIN,
             "| opcode | name | request fields | reply fields | trailing buffer | kind "
             "| properties |",
             "|---|---|---|---|---|---|---|"]
    for op in sorted(protocol.OPS.values(), key=lambda op: op.opcode):
        lines.append("| 0x%04X | %s | %s | %s | %s | %s | %s |" % (
            op.opcode, op.name, _fields(op.request_fields, op.request),
            _fields(op.reply_fields, op.reply), _buffer(op), _kind(op), _properties(op)))
    lines.append(END)
    return "\n".join(lines)


def render(text):
    """``text`` of the page with its generated region replaced."""
    start, end = text.find(BEGIN), text.find(END)
    if start < 0 or end < start:
        raise ValueError("%s has no generated op table between %r and %r"
                         % (DOC.name, BEGIN, END))
    return text[:start] + op_table() + text[end + len(END):]


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    current = DOC.read_text()
    wanted = render(current)
    if "--check" in argv:
        if wanted != current:
            print("docs/protocol.md is stale: run python -m tools.protocol_doc",
                  file=sys.stderr)
            return 1
        return 0
    if wanted != current:
        DOC.write_text(wanted)
    return 0


if __name__ == "__main__":
    sys.exit(main())
