"""Running a PTX kernel's grid: blocks in batches, each batch vectorised with numpy.

Every thread of a batch is one lane of the numpy arrays that hold the
registers; a batch is a run of whole blocks (each block keeps its own
shared memory), so one numpy operation executes an instruction for
thousands of threads. Threads that diverge are grouped by program counter
and the group with the lowest counter runs first, until its counter
reaches the next group's, where the two merge: branches reconverge at the
first instruction both paths reach, and a barrier is reached by every
thread that will reach it before any goes past it. Calls to device
functions run the callee for the calling lanes in a frame of its own.

The executor counts the thread-instructions it runs against the launch's
budget and stops a kernel that passes it (CUDA_ERROR_LAUNCH_TIMEOUT).
"""

import bisect
import dataclasses
import re
import time

import numpy as np

from orionx_agent.server.ptx import faults, memory, memory_ops
from orionx_agent.server.ptx.op import BRANCH, CALL, EXIT, PLAIN, RET, Op
from orionx_agent.server.ptx.parser import PtxError, Reg, Symbol, parse_module
from orionx_agent.server.ptx.semantics import compile_instruction

WARP_SIZE = 32
# Lanes per batch: enough threads that numpy's per-call overhead is spread
# thin, few enough that a batch's registers stay in cache.
BATCH_LANES = 8192
MAX_THREADS_PER_BLOCK = 1024
MAX_SHARED_BYTES_PER_BLOCK = 48 * 1024
CLOCK_KHZ = 1_500_000


def align_up(value, alignment):
    return (value + alignment - 1) // alignment * alignment


# Device functions the CUDA driver supplies on a real GPU, and what the
# simulated GPU says to a kernel that calls one.
_RUNTIME_FUNCTIONS = {
    "vprintf": "device-side printf is not supported by the simulated GPU; copy values "
               "to a buffer and print them on the host",
    "__assertfail": "device-side assert is not supported by the simulated GPU; build with "
                    "-DNDEBUG or report failures through a buffer",
    "malloc": "device-side malloc is not supported by the simulated GPU; allocate with "
              "cuMemAlloc and pass the buffer",
    "free": "device-side free is not supported by the simulated GPU",
}


# Names in an instruction's text: the shared variables and functions it uses.
_NAME = re.compile(r"[A-Za-z_$][\w$]*")


@dataclasses.dataclass
class SharedLayout:
    """A kernel's shared memory: where each variable it uses lies, its static
    bytes, and where dynamic shared memory (extern arrays) begins."""
    offsets: dict
    static_bytes: int
    dynamic_offset: int
    has_dynamic: bool


@dataclasses.dataclass
class CompiledFunction:
    name: str
    function: object          # parser.Function
    code: list                # semantics Op per instruction
    frame_param_bytes: int    # a device function's per-thread parameter block
    stack_local_bytes: int    # its local memory plus its deepest callee's


class Program:
    """A loaded PTX module: every function compiled, ready to launch."""

    def __init__(self, text):
        self.module = parse_module(text)
        self.functions = {}
        for name, function in self.module.functions.items():
            if function.instructions or function.is_entry:
                self.functions[name] = self._compile(function)
        self._check_calls()
        self.shared_layouts = self._shared_layouts()
        # Writable: a host that placed the module's variables in an
        # allocation (place_variables) refreshes it before each launch.
        self.const = np.frombuffer(bytearray(bytes(self.module.const_image).ljust(
            align_up(len(self.module.const_image), 16) or 16, b"\0")), dtype=np.uint8)
        # Written by kernels and kept between launches, as a module's
        # variables are; each loaded module has its own.
        self.module_globals = np.frombuffer(bytearray(bytes(self.module.global_image).ljust(
            align_up(len(self.module.global_image), 16) or 16, b"\0")), dtype=np.uint8)
        if not self.kernels:
            raise PtxError("the PTX module has no .entry kernel")
        # Device pointers of the module's .global and .const variables once
        # the host placed them in an allocation (place_variables); until
        # then .global variables live in module_globals, behind a window.
        self.globals_dptr = None
        self.const_dptr = None

    @property
    def variables_layout(self):
        """(bytes, const offset) of one buffer holding the module's .global
        variables, then its .const ones: what place_variables expects."""
        const_offset = align_up(len(self.module.global_image), 256)
        const_bytes = len(self.module.const_image)
        if not const_bytes and not self.module.global_image:
            return 0, 0
        return const_offset + const_bytes, const_offset

    def variables_image(self):
        """The initial bytes of that buffer."""
        nbytes, const_offset = self.variables_layout
        image = bytearray(nbytes)
        image[:len(self.module.global_image)] = self.module.global_image
        image[const_offset:] = self.module.const_image
        return image

    def place_variables(self, dptr):
        """From now on the module's .global variables are the bytes at
        ``dptr`` (global memory, the launch's allocations reach them) and
        its .const ones are read from ``dptr + const offset``, which the
        host copies into ``const`` before each launch."""
        _, const_offset = self.variables_layout
        self.globals_dptr = dptr
        self.const_dptr = dptr + const_offset

    def variable(self, name):
        """(device pointer, bytes) of the placed .global or .const ``name``, or None."""
        if name in self.module.globals and self.globals_dptr is not None:
            variable = self.module.globals[name]
            return self.globals_dptr + variable.offset, variable.nbytes
        if name in self.module.const and self.const_dptr is not None:
            variable = self.module.const[name]
            return self.const_dptr + variable.offset, variable.nbytes
        return None

    @classmethod
    def link(cls, texts):
        """One program of several PTX inputs: a function declared ``.extern``
        in one is the definition in another (what cuLink* does for PTX)."""
        first_lines, line = [], 1
        for text in texts:
            first_lines.append(line)
            line += text.count("\n") + 1
        try:
            return cls("\n".join(texts))
        except PtxError as exc:
            raise PtxError(_LINE.sub(lambda m: _input_line(first_lines, int(m.group(1))),
                                     str(exc))) from None

    @property
    def kernels(self):
        return {n: f for n, f in self.functions.items() if f.function.is_entry}

    def _shared_layouts(self):
        """Each kernel's shared memory: the .shared variables it and the
        functions it calls declare or name, as a GPU gives a kernel only
        those (CUB's modules declare hundreds of kernels' worth)."""
        module = self.module
        shared_names = set(module.shared) | module.dynamic_shared
        declared = {}  # a function's own .shared, used or not
        for variable in module.shared.values():
            if variable.function:
                declared.setdefault(variable.function, set()).add(variable.name)
        uses, calls = {}, {}
        for name, compiled in self.functions.items():
            tokens = set()
            for ins in compiled.function.instructions:
                tokens.update(_NAME.findall(ins.text))
            uses[name] = (tokens & shared_names) | declared.get(name, set())
            calls[name] = (tokens & self.functions.keys()) - {name}
        layouts = {}
        for kernel in self.kernels:
            used, pending, seen = set(), [kernel], set()
            while pending:
                name = pending.pop()
                if name not in seen:
                    seen.add(name)
                    used |= uses[name]
                    pending.extend(calls[name])
            offsets, static_bytes = {}, 0
            for variable in module.shared.values():  # declaration order
                if variable.name in used:
                    static_bytes = align_up(static_bytes, variable.align)
                    offsets[variable.name] = static_bytes
                    static_bytes += variable.nbytes
            dynamic = used & module.dynamic_shared
            dynamic_offset = align_up(static_bytes, max(16, module.shared_align))
            offsets.update(dict.fromkeys(dynamic, dynamic_offset))
            layouts[kernel] = SharedLayout(offsets, static_bytes, dynamic_offset, bool(dynamic))
        return layouts

    @staticmethod
    def _compile(function):
        code = [compile_instruction(ins) for ins in function.instructions]
        if not code or code[-1].kind not in (RET, EXIT, BRANCH):
            code.append(Op(RET, instruction=function.instructions[-1] if
                           function.instructions else None))
        returns = max((r.offset + r.nbytes for r in function.returns), default=0)
        params = align_up(returns, 8) + function.param_bytes
        return CompiledFunction(function.name, function, code, align_up(max(params, 8), 16),
                                function.local_bytes)

    def _check_calls(self):
        """Every call names a defined function and none recurses; sizes each
        function's local stack (its own depot plus its deepest callee's)."""
        done = {}

        def depth(name, path):
            if name in path:
                raise PtxError("function %s calls itself (through %s): recursion is not "
                               "supported by the simulated GPU" % (name, " -> ".join(path)))
            if name in done:
                return done[name]
            compiled = self.functions.get(name)
            if compiled is None:
                raise PtxError("call to %s, which this module declares but does not "
                               "define: %s" % (name, _RUNTIME_FUNCTIONS.get(
                                   name, "link the PTX that defines it")))
            deepest = 0
            for op in compiled.code:
                if op.kind == CALL:
                    self._check_call(op.instruction)
                    deepest = max(deepest, depth(op.instruction.operands[0].function,
                                                 path + [name]))
            done[name] = compiled.function.local_bytes + deepest
            compiled.stack_local_bytes = done[name]
            return done[name]
        for name in self.functions:
            depth(name, [])

    def _check_call(self, ins):
        target = ins.operands[0]
        callee = self.module.functions[target.function]
        if len(target.args) != len(callee.params) or \
                len(target.returns) > len(callee.returns):
            raise PtxError("line %d: %s passes %d arguments and %d return values to %s, "
                           "which takes %d and returns %d"
                           % (ins.line, ins.text, len(target.args), len(target.returns),
                              callee.name, len(callee.params), len(callee.returns)))
        for operand in target.args + target.returns:
            is_slot = isinstance(operand, Symbol) and operand.space == "callparam"
            if not is_slot and not (isinstance(operand, Reg) and operand in target.args):
                raise PtxError("line %d: %s: call arguments and return values must be "
                               ".param variables of the call site" % (ins.line, ins.text))

    def param_layout(self, kernel):
        """[(name, PTX type name, offset, bytes)] of a kernel's parameters."""
        return [(p.name, p.type.name, p.offset, p.nbytes)
                for p in self.functions[kernel].function.params]


_LINE = re.compile(r"\bline (\d+)")


def _input_line(first_lines, line):
    """'input K line L' of a line of the joined inputs of Program.link."""
    index = bisect.bisect_right(first_lines, line) - 1
    return "input %d line %d" % (index + 1, line - first_lines[index] + 1)


class LaneLayout:
    """Where each lane of a batch of ``block_count`` blocks sits: its thread
    and warp. The same for every batch of a launch, so computed once."""

    def __init__(self, launch, block_count):
        threads = launch.threads_per_block
        self.lanes = threads * block_count
        self.lane_index = np.arange(self.lanes, dtype=np.int64)
        thread = self.lane_index % threads
        self.block_of_lane = self.lane_index // threads
        bx, by, bz = launch.block_dim
        u32 = np.uint32
        self.laneid = (thread % WARP_SIZE).astype(u32)
        warps_per_block = align_up(threads, WARP_SIZE) // WARP_SIZE
        warp_in_block = thread // WARP_SIZE
        self.warp_id = self.block_of_lane * warps_per_block + warp_in_block
        self.warp_start = self.lane_index - thread % WARP_SIZE
        self.warp_lanes = np.minimum(WARP_SIZE, threads - warp_in_block * WARP_SIZE)
        self.warp_starts = np.unique(self.warp_start)
        lane_mask = np.uint64(1) << self.laneid.astype(np.uint64)
        less = (lane_mask - np.uint64(1)).astype(u32)
        less_equal = ((lane_mask << np.uint64(1)) - np.uint64(1)).astype(u32)
        gx, gy, gz = launch.grid_dim
        self.specials = {
            "tid.x": (thread % bx).astype(u32), "tid.y": (thread // bx % by).astype(u32),
            "tid.z": (thread // (bx * by)).astype(u32),
            "ntid.x": u32(bx), "ntid.y": u32(by), "ntid.z": u32(bz),
            "nctaid.x": u32(gx), "nctaid.y": u32(gy), "nctaid.z": u32(gz),
            "laneid": self.laneid, "warpid": warp_in_block.astype(u32),
            "nwarpid": u32(warps_per_block), "nsmid": u32(launch.sm_count),
            "gridid": np.uint64(0),
            "dynamic_smem_size": u32(launch.dynamic_shared_bytes),
            "total_smem_size": u32(launch.shared_bytes),
            "lanemask_eq": lane_mask.astype(u32), "lanemask_lt": less,
            "lanemask_le": less_equal, "lanemask_gt": ~less_equal, "lanemask_ge": ~less,
        }


class Batch:
    """Threads of consecutive blocks run together, and their memories."""

    def __init__(self, launch, first_block, layout, block_count):
        self.lanes = layout.lanes
        self.launch = launch
        self.lane_index = layout.lane_index
        self.block_of_lane = layout.block_of_lane
        self.laneid = layout.laneid
        self.warp_id, self.warp_start = layout.warp_id, layout.warp_start
        self.warp_lanes, self.warp_starts = layout.warp_lanes, layout.warp_starts
        gx, gy, _ = launch.grid_dim
        block_id = first_block + layout.block_of_lane
        u32 = np.uint32
        self._specials = dict(layout.specials)
        self._specials.update({
            "ctaid.x": (block_id % gx).astype(u32), "ctaid.y": (block_id // gx % gy).astype(u32),
            "ctaid.z": (block_id // (gx * gy)).astype(u32),
            "smid": (block_id % launch.sm_count).astype(u32),
        })
        self.shared_bytes = launch.shared_bytes
        self.shared = np.zeros(max(16, self.shared_bytes * block_count), dtype=np.uint8)
        self.local_stride = launch.local_stride
        self.local = np.zeros(max(16, self.local_stride * self.lanes), dtype=np.uint8)
        self.const = launch.program.const
        self.const_bytes = len(launch.program.module.const_image)
        self.module_globals = launch.program.module_globals
        # Placed variables are ordinary global memory (symbol_address).
        self.module_globals_bytes = 0 if launch.program.globals_dptr is not None else \
            len(launch.program.module.global_image)
        self.kernel_params = launch.kernel_params
        self.kernel_param_bytes = launch.kernel_param_bytes
        self.global_memory = launch.global_memory
        self.live = np.ones(self.lanes, dtype=bool)
        self.zeros = {}

    def special(self, name):
        value = self._specials.get(name)
        if value is not None:
            return value
        if name in ("clock", "clock64"):
            cycles = time.perf_counter_ns() * CLOCK_KHZ // 1_000_000
            return np.uint32(cycles & 0xFFFFFFFF) if name == "clock" else np.uint64(cycles)
        now = time.time_ns()
        if name == "globaltimer_lo":
            return np.uint32(now & 0xFFFFFFFF)
        if name == "globaltimer_hi":
            return np.uint32(now >> 32)
        return np.uint64(now)

    def zero(self, dtype):
        """A shared all-zero register array (registers are never written in place)."""
        array = self.zeros.get(dtype)
        if array is None:
            array = self.zeros[dtype] = np.zeros(self.lanes, dtype=dtype)
        return array


class Frame:
    """One activation of a function for a batch: its registers and parameters."""

    def __init__(self, batch, compiled, local_base, params=None):
        self.block = batch
        self.lanes = batch.lanes
        self.compiled = compiled
        function = compiled.function
        self.regs = [batch.zero(r.type.raw_dtype) for r in function.registers]
        self.carry = batch.zero(np.dtype(np.uint8))  # the .cc flag of each thread
        self.local_base = local_base
        self.params = params
        self.param_stride = compiled.frame_param_bytes
        self.callparam_stride = align_up(max(function.call_param_bytes, 8), 16)
        self.callparams = None
        if function.call_param_bytes:
            self.callparams = np.zeros(self.callparam_stride * batch.lanes, dtype=np.uint8)

    def symbol_address(self, symbol):
        space = symbol.space
        if space == "shared":
            return self.block.launch.shared_layout.offsets[symbol.name] + symbol.offset
        if space == "const":
            module = self.block.launch.program.module
            return module.const[symbol.name].offset + symbol.offset
        if space == "local":
            return self.local_base + symbol.offset
        if space == "global":
            program = self.block.launch.program
            base = program.globals_dptr
            if base is None:
                base = memory.MODULE_GLOBALS_WINDOW
            return base + program.module.globals[symbol.name].offset + symbol.offset
        if space in ("kparam", "param", "callparam"):
            return symbol.offset
        raise AssertionError("function addresses are refused at load: %s" % symbol.name)

    def resolve(self, space, addresses, nbytes, mask, ins):
        return memory_ops.resolve(self, space, addresses, nbytes, mask, ins)

    def where(self, ins):
        return "kernel %s, function %s, line %d (%s)" % (
            self.block.launch.kernel, self.compiled.name, ins.line, ins.text)


@dataclasses.dataclass
class Launch:
    program: Program
    kernel: str
    grid_dim: tuple
    block_dim: tuple
    dynamic_shared_bytes: int
    kernel_params: np.ndarray
    kernel_param_bytes: int
    global_memory: object
    instruction_budget: int
    sm_count: int = 16
    # Set when the launching session ends (preempted, disconnected): the
    # kernel stops at its next branch or call instead of holding the GPU.
    abandoned: object = None
    executed: int = 0

    @property
    def threads_per_block(self):
        x, y, z = self.block_dim
        return x * y * z

    @property
    def shared_layout(self):
        return self.program.shared_layouts[self.kernel]

    @property
    def shared_bytes(self):
        layout = self.shared_layout
        if not layout.has_dynamic and not self.dynamic_shared_bytes:
            return align_up(layout.static_bytes, 16)
        return align_up(layout.dynamic_offset + self.dynamic_shared_bytes, 16)

    @property
    def local_stride(self):
        return align_up(self.program.functions[self.kernel].stack_local_bytes, 16)

    def count(self, thread_instructions):
        self.executed += thread_instructions
        if self.abandoned is not None and self.abandoned.is_set():
            raise faults.KernelFault(faults.LAUNCH_FAILED,
                                     "kernel %s was stopped: its session ended" % self.kernel)
        if self.executed > self.instruction_budget:
            raise faults.KernelFault(
                faults.LAUNCH_TIMEOUT,
                "kernel %s ran past the simulated GPU's instruction budget of %d "
                "thread-instructions per launch and was stopped: look for a loop that never "
                "ends, or raise [gpu_server] sim_ptx_instruction_budget"
                % (self.kernel, self.instruction_budget))


def run(launch):
    """Execute every block of ``launch``; KernelFault if the kernel faults."""
    threads = launch.threads_per_block
    blocks = launch.grid_dim[0] * launch.grid_dim[1] * launch.grid_dim[2]
    per_batch = max(1, min(blocks, BATCH_LANES // max(threads, 1)))
    entry = launch.program.functions[launch.kernel]
    layouts = {}
    with np.errstate(all="ignore"):
        for first in range(0, blocks, per_batch):
            count = min(per_batch, blocks - first)
            if count not in layouts:
                layouts[count] = LaneLayout(launch, count)
            batch = Batch(launch, first, layouts[count], count)
            run_frame(Frame(batch, entry, 0), batch.live.copy())


def _add_group(groups, pc, mask):
    existing = groups.get(pc)
    groups[pc] = mask if existing is None else existing | mask


def run_frame(frame, entry_mask):
    """Run ``frame``'s function for the lanes of ``entry_mask`` until each
    has returned or exited."""
    code = frame.compiled.code
    batch = frame.block
    launch = batch.launch
    end = len(code)
    groups = {0: entry_mask}
    while groups:
        pc = min(groups)
        mask = groups.pop(pc) & batch.live
        active = int(np.count_nonzero(mask))
        if not active:
            continue
        full = active == frame.lanes
        boundary = min(groups) if groups else end + 1
        # Thread-instructions since the budget was last checked: checked at
        # every branch and call (a loop that never ends branches), and when
        # this group stops.
        unchecked = 0
        while True:
            if pc >= end:
                break  # fell off the end: returns
            op = code[pc]
            kind = op.kind
            if kind is PLAIN:
                unchecked += active
                op.run(frame, mask, full)
                pc += 1
                if pc >= boundary:
                    _add_group(groups, pc, mask)
                    break
                continue
            launch.count(unchecked + active)
            unchecked = 0
            if kind is BRANCH:
                guard = op.instruction.guard
                if guard is None:
                    pc = op.target
                else:
                    predicate = frame.regs[guard.index]
                    taken = mask & (~predicate if op.instruction.guard_negated else predicate)
                    taken_count = int(np.count_nonzero(taken))
                    if taken_count == 0:
                        pc += 1
                    elif taken_count == active:
                        pc = op.target
                    else:
                        _add_group(groups, op.target, taken)
                        _add_group(groups, pc + 1, mask & ~taken)
                        break
            else:
                leaving = _guarded_lanes(frame, op, mask)
                if kind is CALL:
                    _call(frame, op, leaving)
                    mask = mask & batch.live
                elif kind is EXIT or (kind is RET and frame.params is None):
                    batch.live &= ~leaving
                    mask = mask & ~leaving
                else:  # RET from a device function
                    mask = mask & ~leaving
                active = int(np.count_nonzero(mask))
                if not active:
                    break
                full = active == frame.lanes
                pc += 1
            if pc >= boundary:
                _add_group(groups, pc, mask)
                break
        launch.count(unchecked)


def _guarded_lanes(frame, op, mask):
    guard = op.instruction.guard if op.instruction is not None else None
    if guard is None:
        return mask
    predicate = frame.regs[guard.index]
    return mask & (~predicate if op.instruction.guard_negated else predicate)


def _call(frame, op, lanes):
    if not lanes.any():
        return
    target = op.instruction.operands[0]
    program = frame.block.launch.program
    callee = program.functions[target.function]
    function = callee.function
    lanes_count = frame.lanes
    params = np.zeros(callee.frame_param_bytes * lanes_count, dtype=np.uint8)
    param_rows = params.reshape(lanes_count, callee.frame_param_bytes)
    base = align_up(max((r.offset + r.nbytes for r in function.returns), default=0), 8)
    for arg, param in zip(target.args, function.params, strict=True):
        param_rows[:, base + param.offset:base + param.offset + param.nbytes] = \
            _argument_bytes(frame, arg, param.nbytes)
    callee_frame = Frame(frame.block, callee,
                         frame.local_base + frame.compiled.function.local_bytes, params)
    run_frame(callee_frame, lanes)
    caller_rows = frame.callparams.reshape(lanes_count, frame.callparam_stride) \
        if frame.callparams is not None else None
    for slot, ret in zip(target.returns, function.returns, strict=False):
        window = caller_rows[:, slot.offset:slot.offset + ret.nbytes]
        window[lanes] = param_rows[lanes, ret.offset:ret.offset + ret.nbytes]


def _argument_bytes(frame, arg, nbytes):
    """(lanes, nbytes) uint8 of one call argument."""
    if isinstance(arg, Symbol) and arg.space == "callparam":
        rows = frame.callparams.reshape(frame.lanes, frame.callparam_stride)
        return rows[:, arg.offset:arg.offset + nbytes]
    bits = frame.regs[arg.index]  # a register argument (checked at load)
    return np.ascontiguousarray(bits).view(np.uint8).reshape(frame.lanes, -1)[:, :nbytes]
