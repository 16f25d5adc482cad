"""A compiled instruction: what the executor runs, and its kind of control flow."""

import dataclasses

PLAIN, BRANCH, CALL, RET, EXIT = "plain", "branch", "call", "ret", "exit"


@dataclasses.dataclass
class Op:
    """``run(frame, mask, full)`` for PLAIN ops; the others are control flow
    the executor carries out (``target``: a branch's instruction index)."""
    kind: str
    run: object = None
    target: int = -1
    instruction: object = None
