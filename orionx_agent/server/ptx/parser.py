"""PTX text to a module: kernels and device functions with typed registers.

Two passes. The first cuts the text into statements, labels and scope
braces (keeping line numbers for error messages); the second reads module
declarations, function headers with their parameter layouts, and each
function body into :class:`Instruction` objects whose operands are already
resolved: a register is an index into its function's register table,
a label an instruction index, a variable its state space and offset.
Whatever cannot be read is refused with :class:`PtxError` naming the line.
"""

import dataclasses
import re
import struct

from orionx_agent.server.ptx.types import ptx_type


class PtxError(Exception):
    """The PTX cannot be loaded: ``message`` names the line and the reason."""


# -- operands ---------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Reg:
    index: int
    name: str
    type: object  # PtxType of the declaration


@dataclasses.dataclass(frozen=True)
class Imm:
    value: object  # int, or float for 0f/0d and decimal float literals


@dataclasses.dataclass(frozen=True)
class Special:
    name: str      # "tid.x", "clock64", ...


@dataclasses.dataclass(frozen=True)
class Symbol:
    """A variable or function named as a value: its address in ``space``
    (for shared and const variables, the offset from the variable's base)."""
    name: str
    space: str     # "shared", "const", "local", "param", "kparam", "func"
    offset: int


@dataclasses.dataclass(frozen=True)
class Address:
    base: object   # Reg, Symbol or None (an absolute address)
    offset: int


@dataclasses.dataclass(frozen=True)
class Vector:
    elements: tuple  # Reg, Imm, or None for the sink "_"


@dataclasses.dataclass(frozen=True)
class Pair:
    """``%r1|%p1``: shfl's value and its predicate, setp's two predicates."""
    first: Reg
    second: Reg


@dataclasses.dataclass(frozen=True)
class Not:
    """``!%p``: a predicate source read negated."""
    reg: Reg


@dataclasses.dataclass(frozen=True)
class Label:
    name: str
    target: int = -1


@dataclasses.dataclass(frozen=True)
class CallTarget:
    returns: tuple   # Symbols of the caller's return parameters
    function: str
    args: tuple      # Symbols, Regs or Imms


SPECIAL_REGISTERS = {
    "tid.x", "tid.y", "tid.z", "ntid.x", "ntid.y", "ntid.z", "ctaid.x", "ctaid.y",
    "ctaid.z", "nctaid.x", "nctaid.y", "nctaid.z", "laneid", "warpid", "nwarpid", "smid",
    "nsmid", "gridid", "clock", "clock64", "globaltimer", "globaltimer_lo",
    "globaltimer_hi", "lanemask_eq", "lanemask_le", "lanemask_lt", "lanemask_ge",
    "lanemask_gt", "dynamic_smem_size", "total_smem_size",
}


@dataclasses.dataclass
class Instruction:
    opcode: str
    modifiers: tuple
    operands: list
    guard: object = None       # Reg of a predicate, or None
    guard_negated: bool = False
    line: int = 0
    text: str = ""

    def has(self, modifier):
        return modifier in self.modifiers


@dataclasses.dataclass
class Param:
    name: str
    type: object      # PtxType (of the element, for .b8 arrays)
    nbytes: int
    align: int
    offset: int


@dataclasses.dataclass
class Function:
    name: str
    is_entry: bool
    params: list
    returns: list
    line: int
    body_items: list = dataclasses.field(default_factory=list)
    instructions: list = dataclasses.field(default_factory=list)
    registers: list = dataclasses.field(default_factory=list)   # Reg, by index
    local_bytes: int = 0
    call_param_bytes: int = 0  # per thread: the .param slots of its call sites

    @property
    def param_bytes(self):
        return max((p.offset + p.nbytes for p in self.params), default=0)


@dataclasses.dataclass
class Variable:
    name: str
    space: str
    nbytes: int
    align: int
    offset: int = 0
    init: bytes = b""
    function: str = ""  # a .shared declared in a function's body: that function


@dataclasses.dataclass
class Module:
    version: str = ""
    target: str = ""
    functions: dict = dataclasses.field(default_factory=dict)
    # name -> Variable; placed per kernel (executor.SharedLayout), not here
    shared: dict = dataclasses.field(default_factory=dict)
    shared_align: int = 16
    dynamic_shared: set = dataclasses.field(default_factory=set)
    const: dict = dataclasses.field(default_factory=dict)
    const_image: bytearray = dataclasses.field(default_factory=bytearray)
    # Device-side .global variables: one image per loaded module.
    globals: dict = dataclasses.field(default_factory=dict)
    global_image: bytearray = dataclasses.field(default_factory=bytearray)

    @property
    def entries(self):
        return {name: f for name, f in self.functions.items() if f.is_entry}


# -- pass 1: statements ----------------------------------------------------------

_COMMENTS = re.compile(r"//[^\n]*|/\*.*?\*/", re.S)
_LINE_DIRECTIVES = re.compile(r"\.(loc|file|version|target|address_size)\b")
_LABEL = re.compile(r"^\s*([A-Za-z_$][\w$]*)\s*:(?!:)")


def _strip_comments(text):
    # Keep the newlines of block comments so line numbers stay true.
    return _COMMENTS.sub(lambda m: "\n" * m.group(0).count("\n"), text)


def split_statements(text):
    """[(kind, text, line)] with kind "stmt", "label", "open" or "close"."""
    text = _strip_comments(text)
    items, buf, line, buf_line = [], [], 1, 1
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if not buf and ch.isspace():
            line += ch == "\n"
            i += 1
            continue
        if not buf:
            buf_line = line
            rest = text[i:i + 200]
            label = _LABEL.match(rest)
            if label and not rest.lstrip().startswith("."):
                items.append(("label", label.group(1), line))
                i += label.end()
                buf = []
                continue
            stripped = rest.lstrip()
            if _LINE_DIRECTIVES.match(stripped):
                # Directives that end at the end of their line, not at ';'.
                end = text.find("\n", i)
                end = n if end < 0 else end
                directive = text[i:end].strip().rstrip(";")
                if not re.match(r"\.(loc|file)\b", directive):
                    items.append(("stmt", directive, line))
                i = end
                continue
        if ch == "\n":
            line += 1
            buf.append(" ")
        elif ch == ";":
            statement = "".join(buf).strip()
            if statement:
                items.append(("stmt", statement, buf_line))
            buf = []
        elif ch == "{":
            current = "".join(buf).strip()
            if not current:
                items.append(("open", "", line))
                buf = []
            elif re.search(r"(^|\s)\.(entry|func)\s", current):
                items.append(("header", current, buf_line))
                items.append(("open", "", line))
                buf = []
            elif current.startswith(".section"):
                depth, i = 1, i + 1
                while i < n and depth:
                    depth += {"{": 1, "}": -1}.get(text[i], 0)
                    line += text[i] == "\n"
                    i += 1
                buf = []
                continue
            else:  # a vector operand or an initializer: part of the statement
                depth = 0
                while i < n:
                    buf.append(text[i] if text[i] != "\n" else " ")
                    line += text[i] == "\n"
                    depth += {"{": 1, "}": -1}.get(text[i], 0)
                    i += 1
                    if not depth:
                        break
                continue
        elif ch == "}":
            if "".join(buf).strip():
                raise PtxError("line %d: unexpected '}' inside %r" % (line, "".join(buf)))
            items.append(("close", "", line))
        else:
            buf.append(ch)
        i += 1
    rest = "".join(buf).strip()
    if rest:
        if re.search(r"(^|\s)\.(entry|func)\s", rest):  # a declaration without a body
            items.append(("stmt", rest, buf_line))
        else:
            raise PtxError("line %d: statement %r is not ended by ';'" % (buf_line, rest))
    return items


# -- pass 2: declarations and bodies -----------------------------------------------

_DECL_SPACES = ("reg", "shared", "const", "global", "local", "param")
_ALIGN = re.compile(r"\.align\s+(\d+)")
_JOINED_DIRECTIVES = re.compile(r"(\.\w+)(?=\.)")


def _split_top(text, sep=","):
    """Split on ``sep`` outside brackets, braces and parentheses."""
    parts, depth, start = [], 0, 0
    for index, ch in enumerate(text):
        if ch in "[{(":
            depth += 1
        elif ch in "]})":
            depth -= 1
        elif ch == sep and depth == 0:
            parts.append(text[start:index].strip())
            start = index + 1
    tail = text[start:].strip()
    if tail:
        parts.append(tail)
    return parts


def _parse_int(token):
    token = token.strip()
    negative = token.startswith("-")
    body = token[1:] if negative else token
    if body.upper().endswith("U"):
        body = body[:-1]
    if body.lower().startswith("0x"):
        value = int(body, 16)
    elif body.lower().startswith("0b"):
        value = int(body, 2)
    elif len(body) > 1 and body.startswith("0") and body.isdigit():
        value = int(body, 8)
    else:
        value = int(body)
    return -value if negative else value


def parse_immediate(token):
    token = token.strip()
    low = token.lower()
    if re.fullmatch(r"-?0f[0-9a-f]{8}", low):
        negative = low.startswith("-")
        value = struct.unpack("<f", struct.pack("<I", int(low.lstrip("-")[2:], 16)))[0]
        return Imm(-value if negative else value)
    if re.fullmatch(r"-?0d[0-9a-f]{16}", low):
        negative = low.startswith("-")
        value = struct.unpack("<d", struct.pack("<Q", int(low.lstrip("-")[2:], 16)))[0]
        return Imm(-value if negative else value)
    try:
        return Imm(_parse_int(token))
    except ValueError:
        pass
    try:
        return Imm(float(token))
    except ValueError:
        return None


def _declaration_parts(statement):
    """(space, type name, align, [names with array/range suffix], init text)."""
    init = None
    if "=" in statement:
        statement, init = statement.split("=", 1)
    statement = _JOINED_DIRECTIVES.sub(r"\1 ", statement)  # ".reg.b32" is ".reg .b32"
    align = _ALIGN.search(statement)
    statement = _ALIGN.sub(" ", statement)
    tokens = statement.replace(",", " , ").split()
    space = type_name = None
    names, vector = [], 1
    for token in tokens:
        if token.startswith("."):
            word = token[1:]
            if word in _DECL_SPACES and space is None:
                space = word
            elif word in ("v2", "v4"):
                vector = int(word[1:])
            elif ptx_type(word) is not None:
                type_name = word
            # .visible/.extern/.weak/.ptr and the like change nothing here
        elif token != ",":
            names.append(token)
    return space, type_name, int(align.group(1)) if align else None, names, init, vector


_ARRAY = re.compile(r"^([A-Za-z_$%][\w$]*)((?:\[\d*\])*)$")


def _array_elements(name_text):
    """(name, element count or None for an unsized ``[]``)."""
    match = _ARRAY.match(name_text)
    if not match:
        return name_text, 1
    count = 1
    for dim in re.findall(r"\[(\d*)\]", match.group(2)):
        if dim == "":
            return match.group(1), None
        count *= int(dim)
    return match.group(1), count


def _init_bytes(init, ptype, count, line):
    values = [v for v in re.split(r"[\s,{}]+", init) if v]
    out = bytearray()
    fmt = {8: "B", 16: "H", 32: "I", 64: "Q"}[ptype.bits]
    for value in values:
        imm = parse_immediate(value)
        if imm is None:
            raise PtxError("line %d: initializer %r is not a number (addresses of "
                           "variables in initializers are not supported)" % (line, value))
        if isinstance(imm.value, float):
            out += struct.pack("<f" if ptype.bits == 32 else "<d", imm.value)
        else:
            out += struct.pack("<" + fmt, imm.value & ((1 << ptype.bits) - 1))
    return bytes(out).ljust(count * ptype.bytes, b"\0")


def _align_up(value, align):
    return (value + align - 1) // align * align


class _Parser:
    def __init__(self, text):
        self.module = Module()
        self.items = split_statements(text)

    def parse(self):
        index = 0
        while index < len(self.items):
            kind, text, line = self.items[index]
            if kind == "header":
                function = self._header(text, line)
                index = self._collect_body(function, index + 1)
                if function.name in self.module.functions and \
                        self.module.functions[function.name].body_items:
                    raise PtxError("line %d: function %s is defined twice"
                                   % (line, function.name))
                self.module.functions[function.name] = function
                continue
            if kind == "stmt":
                self._module_statement(text, line)
            elif kind in ("open", "close", "label"):
                raise PtxError("line %d: unexpected %s at module scope" % (line, kind))
            index += 1
        for function in self.module.functions.values():
            if function.body_items:
                _BodyReader(self.module, function).read()
        return self.module

    def _collect_body(self, function, index):
        kind, _, line = self.items[index]
        depth = 1
        index += 1
        while depth:
            if index >= len(self.items):
                raise PtxError("line %d: body of %s is not closed" % (line, function.name))
            item = self.items[index]
            depth += {"open": 1, "close": -1}.get(item[0], 0)
            if depth:
                function.body_items.append(item)
            index += 1
        return index

    def _module_statement(self, text, line):
        word = text.split()[0]
        if word == ".version":
            self.module.version = text.split()[1]
        elif word == ".target":
            self.module.target = text.split(None, 1)[1]
        elif word in (".address_size", ".pragma", ".extern") and \
                not re.search(r"\.(shared|const|global|func)\b", text):
            if word == ".address_size" and text.split()[1] != "64":
                raise PtxError("line %d: .address_size %s: the simulated GPU runs 64-bit "
                               "PTX only" % (line, text.split()[1]))
        elif re.search(r"(^|\s)\.(entry|func)\s", text):
            function = self._header(text, line)  # a prototype: its body comes later
            self.module.functions.setdefault(function.name, function)
        elif re.search(r"(^|\s)\.(shared|const|global)\b", text):
            self._module_variable(text, line)
        elif word == ".callprototype":
            pass  # only an indirect call would use it, and those are refused
        else:
            raise PtxError("line %d: module directive %r is not supported by the simulated "
                           "GPU" % (line, word))

    def _module_variable(self, text, line):
        space, type_name, align, names, init, vector = _declaration_parts(text)
        ptype = ptx_type(type_name or "b8")
        for name_text in names:
            name, count = _array_elements(name_text)
            elem_bytes = ptype.bytes * vector
            align_ = align or elem_bytes
            if space == "global":
                count = count or 0
                image = self.module.global_image
                offset = _align_up(len(image), align_)
                data = _init_bytes(init, ptype, count, line) if init else \
                    bytes(count * elem_bytes)
                image += bytes(offset - len(image)) + data
                self.module.globals[name] = Variable(name, "global", len(data), align_,
                                                     offset, data)
                continue
            if space == "shared":
                if count is None:
                    self.module.dynamic_shared.add(name)
                    self.module.shared_align = max(self.module.shared_align, align_)
                    continue
                self.module.shared[name] = Variable(name, "shared", count * elem_bytes,
                                                    align_)
            elif space == "const":
                count = count or 0
                offset = _align_up(len(self.module.const_image), align_)
                data = _init_bytes(init, ptype, count, line) if init else \
                    bytes(count * elem_bytes)
                self.module.const_image += bytes(offset - len(self.module.const_image))
                self.module.const_image += data
                self.module.const[name] = Variable(name, "const", len(data), align_,
                                                   offset, data)

    def _header(self, text, line):
        is_entry = bool(re.search(r"(^|\s)\.entry\s", text))
        returns = []
        head = text
        if not is_entry:
            match = re.search(r"\.func\s*\(([^)]*)\)", text)
            if match:
                returns = self._param_list(match.group(1), line, False)
                head = text[:match.start()] + ".func " + text[match.end():]
        match = re.search(r"\.(?:entry|func)\s+([\w$]+)\s*(?:\((.*)\))?", head, re.S)
        if not match:
            raise PtxError("line %d: cannot read the function header %r" % (line, text))
        params = self._param_list(match.group(2) or "", line, is_entry)
        return Function(match.group(1), is_entry, params, returns, line)

    @staticmethod
    def _param_list(text, line, is_entry):
        params, offset = [], 0
        for part in _split_top(text):
            space, type_name, align, names, _, vector = _declaration_parts(part)
            if space != "param" or not names or type_name is None:
                raise PtxError("line %d: cannot read parameter %r" % (line, part))
            ptype = ptx_type(type_name)
            name, count = _array_elements(names[0])
            nbytes = ptype.bytes * vector * (count or 1)
            align_ = align or ptype.bytes * vector
            offset = _align_up(offset, align_)
            params.append(Param(name, ptype, nbytes, align_, offset))
            offset += nbytes
        return params


class _BodyReader:
    """Declarations and instructions of one function body, scope by scope."""

    def __init__(self, module, function):
        self.module = module
        self.function = function
        self.scopes = [{}]
        self.labels = {}
        self.pending = []  # (instruction, operand index, label name)
        self.local_offset = 0
        self.param_space = {p.name: Symbol(p.name, "kparam" if function.is_entry else "param",
                                           p.offset) for p in function.params}
        for r in function.returns:
            self.param_space[r.name] = Symbol(r.name, "param", r.offset)
        # Parameters of a device function live in its per-thread parameter
        # block after the return values (see executor: call).
        if not function.is_entry:
            base = _align_up(max((r.offset + r.nbytes for r in function.returns), default=0),
                             8)
            for p in function.params:
                self.param_space[p.name] = Symbol(p.name, "param", base + p.offset)
        self.call_param_bytes = 0

    def read(self):
        scope_id = 0
        for kind, text, line in self.function.body_items:
            if kind == "open":
                scope_id += 1
                self.scopes.append({"#scope": scope_id})
            elif kind == "close":
                self.scopes.pop()
            elif kind == "label":
                self.labels[text] = len(self.function.instructions)
            elif text.startswith("."):
                self._declaration(text, line, scope_id)
            else:
                self.function.instructions.append(self._instruction(text, line))
        for instruction, index, name in self.pending:
            if name not in self.labels:
                raise PtxError("line %d: branch to unknown label %s" % (instruction.line, name))
            instruction.operands[index] = Label(name, self.labels[name])
        self.function.local_bytes = _align_up(self.local_offset, 16)
        self.function.call_param_bytes = self.call_param_bytes
        self.function.body_items = []

    # declarations

    def _declaration(self, text, line, scope_id):
        word = text.split()[0]
        if word in (".pragma", ".maxnreg", ".maxntid", ".reqntid", ".minnctapersm"):
            return
        space, type_name, align, names, init, vector = _declaration_parts(text)
        if space == "reg":
            ptype = ptx_type(type_name)
            if ptype is None or vector != 1:
                raise PtxError("line %d: register declaration %r is not supported"
                               % (line, text))
            for name_text in names:
                ranged = re.fullmatch(r"([%\w$]+)<(\d+)>", name_text)
                if ranged:
                    for k in range(int(ranged.group(2))):
                        self._add_register("%s%d" % (ranged.group(1), k), ptype)
                else:
                    self._add_register(name_text, ptype)
            return
        ptype = ptx_type(type_name or "b8")
        for name_text in names:
            name, count = _array_elements(name_text)
            nbytes = ptype.bytes * vector * (count or 0)
            align_ = align or ptype.bytes * vector
            if space == "local":
                self.local_offset = _align_up(self.local_offset, align_)
                self.scopes[-1][name] = Symbol(name, "local", self.local_offset)
                self.local_offset += nbytes
            elif space == "param":
                # A call site's argument or return slot: per-thread bytes
                # in the caller's call-parameter block.
                self.call_param_bytes = _align_up(self.call_param_bytes, max(align_, 8))
                self.scopes[-1][name] = Symbol(name, "callparam", self.call_param_bytes)
                self.call_param_bytes += max(nbytes, ptype.bytes * vector)
            elif space == "shared":
                self.module.shared[name] = Variable(name, "shared", nbytes, align_,
                                                    function=self.function.name)
            else:
                raise PtxError("line %d: declaration %r in a function body is not supported"
                               % (line, text))

    def _add_register(self, name, ptype):
        reg = Reg(len(self.function.registers), name, ptype)
        self.function.registers.append(reg)
        self.scopes[-1][name] = reg

    def _lookup(self, name):
        for scope in reversed(self.scopes):
            if name in scope:
                return scope[name]
        if name in self.param_space:
            return self.param_space[name]
        module = self.module
        # Shared and const variables are placed per kernel at launch (the
        # executor adds their base): their offset here is the one added to it.
        if name in module.shared or name in module.dynamic_shared:
            return Symbol(name, "shared", 0)
        if name in module.const:
            return Symbol(name, "const", 0)
        if name in module.functions:
            return Symbol(name, "func", 0)
        if name in module.globals:
            return Symbol(name, "global", 0)
        return None

    # instructions

    def _instruction(self, text, line):
        guard, negated = None, False
        if text.startswith("@"):
            guard_text, text = text[1:].split(None, 1)
            negated = guard_text.startswith("!")
            guard = self._register(guard_text.lstrip("!"), line)
        head, _, rest = text.partition(" ")
        head = head.strip()
        parts = head.split(".")
        opcode, modifiers = parts[0], tuple(p for p in parts[1:] if p)
        instruction = Instruction(opcode, modifiers, [], guard, negated, line,
                                  " ".join(text.split()))
        if opcode == "call":
            instruction.operands = [self._call_target(rest, line)]
            return instruction
        for index, operand_text in enumerate(_split_top(rest.strip())):
            operand = self._operand(operand_text, line, instruction, index)
            instruction.operands.append(operand)
        return instruction

    def _register(self, name, line):
        found = self._lookup(name)
        if not isinstance(found, Reg):
            raise PtxError("line %d: %s is not a declared register" % (line, name))
        return found

    def _operand(self, text, line, instruction, index):
        text = text.strip()
        if text.startswith("["):
            return self._address(text[1:-1].strip(), line)
        if text.startswith("{"):
            elements = []
            for element in _split_top(text[1:-1]):
                elements.append(None if element == "_" else self._operand(element, line,
                                                                          instruction, -1))
            return Vector(tuple(elements))
        if "|" in text:
            first, second = text.split("|")
            return Pair(self._register(first.strip(), line), self._register(second.strip(),
                                                                              line))
        if text == "_":
            return None
        if text.startswith("!"):
            return Not(self._register(text[1:].strip(), line))
        if text.startswith("%") and text[1:] in SPECIAL_REGISTERS and \
                self._lookup(text) is None:
            return Special(text[1:])
        found = self._lookup(text)
        if found is not None:
            return found
        immediate = parse_immediate(text)
        if immediate is not None:
            return immediate
        if instruction.opcode in ("bra", "brx") and re.fullmatch(r"[\w$]+", text):
            self.pending.append((instruction, index, text))
            return Label(text)
        sym = re.fullmatch(r"([\w$]+)\s*\+\s*(\d+)", text)
        if sym and self._lookup(sym.group(1)) is not None:
            base = self._lookup(sym.group(1))
            return dataclasses.replace(base, offset=base.offset + int(sym.group(2)))
        raise PtxError("line %d: operand %r of %s is not a declared register, variable or "
                       "number" % (line, text, instruction.opcode))

    def _address(self, text, line):
        match = re.fullmatch(r"([%\w$]+)\s*(?:\+\s*(-?\s*(?:0x[0-9a-fA-F]+|\d+)))?", text)
        if match is None:
            match = re.fullmatch(r"([%\w$]+)\s*-\s*(\d+)", text)
            offset = -int(match.group(2)) if match else None
        else:
            offset = _parse_int(match.group(2).replace(" ", "")) if match.group(2) else 0
        if match is None:
            raise PtxError("line %d: cannot read the address [%s]" % (line, text))
        base_text = match.group(1)
        base = self._lookup(base_text)
        if base is None:
            immediate = parse_immediate(base_text)
            if immediate is None or not isinstance(immediate.value, int):
                raise PtxError("line %d: %s in address [%s] is not a register or variable"
                               % (line, base_text, text))
            return Address(None, immediate.value + offset)
        return Address(base, offset)

    def _call_target(self, rest, line):
        parts = _split_top(rest)
        returns = ()
        if parts and parts[0].startswith("("):
            returns = tuple(self._operand(p, line, Instruction("call", (), []), -1)
                            for p in _split_top(parts[0][1:-1]))
            parts = parts[1:]
        if not parts:
            raise PtxError("line %d: call without a function" % line)
        target = parts[0].strip()
        if target not in self.module.functions:
            raise PtxError("line %d: call to %s: only direct calls to .func functions of "
                           "this module are supported (indirect calls are not)"
                           % (line, target))
        args = ()
        if len(parts) > 1 and parts[1].startswith("("):
            args = tuple(self._operand(p, line, Instruction("call", (), []), -1)
                         for p in _split_top(parts[1][1:-1]))
        return CallTarget(returns, target, args)


def parse_module(text):
    """A :class:`Module` of PTX ``text``; raises PtxError naming the line."""
    return _Parser(text).parse()
