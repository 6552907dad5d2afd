"""Read what `torch.save` wrote without unpickling it: a pickle is walked opcode by opcode.

Nothing is imported or called. Globals are recorded as names and only the handful a plain tensor or
state-dict save uses are allowed; the calls such a save makes (`OrderedDict()`, `_rebuild_tensor_v2`,
`_rebuild_parameter`) are checked and simulated. Anything else raises `PickleRefused`, so a voice or
weights file from the internet cannot run code. Used for preset voices (`.pt`) and WavLM weights.
"""

from __future__ import annotations

import pickletools
from dataclasses import dataclass
from typing import Any

import numpy as np


class PickleRefused(Exception):
    """The pickle does something a plain tensor save never does (the message says what)."""


@dataclass(frozen=True)
class _Global:
    module: str
    name: str


@dataclass(frozen=True)
class StorageRef:
    dtype: str
    key: str
    numel: int


@dataclass(frozen=True)
class TensorSpec:
    storage: StorageRef
    offset: int
    shape: tuple[int, ...]
    stride: tuple[int, ...]


STORAGE_DTYPES = {"FloatStorage": "<f4", "HalfStorage": "<f2", "DoubleStorage": "<f8",
                   "BFloat16Storage": "bf16", "LongStorage": "<i8", "IntStorage": "<i4"}
DTYPE_NAMES = {"<f4": "float32", "<f2": "float16", "<f8": "float64", "bf16": "bfloat16", "<i8": "int64",
               "<i4": "int32"}
_MARK = object()
_CALLABLE = {("collections", "OrderedDict"), ("torch._utils", "_rebuild_tensor_v2"),
             ("torch._utils", "_rebuild_parameter"), ("builtins", "dict")}


def walk_torch_pickle(data: bytes) -> Any:
    """The object a torch pickle describes: dicts/lists/tuples of plain values and `TensorSpec`s."""
    stack: list[Any] = []
    memo: dict[int, Any] = {}

    def pop() -> Any:
        if not stack or stack[-1] is _MARK:
            raise PickleRefused("stack underflow")
        return stack.pop()

    def to_mark() -> list[Any]:
        for i in range(len(stack) - 1, -1, -1):
            if stack[i] is _MARK:
                items = stack[i + 1:]
                del stack[i:]
                return items
        raise PickleRefused("no MARK")

    def glob(module: Any, name: Any) -> _Global:
        if not isinstance(module, str) or not isinstance(name, str):
            raise PickleRefused("bad global")
        if (module, name) in _CALLABLE or (module == "torch" and name in STORAGE_DTYPES):
            return _Global(module, name)
        raise PickleRefused(f"global {module}.{name}")

    result: Any = None
    try:
        ops = list(pickletools.genops(data))
    except Exception as exc:
        raise PickleRefused(f"unreadable pickle ({exc})") from None
    arg: Any  # the opcode's decoded argument: an int for the memo opcodes, None where it has none
    for opcode, arg, _ in ops:
        op = opcode.name
        if op in ("PROTO", "FRAME"):
            continue
        if op == "STOP":
            result = pop()
            break
        if op == "MARK":
            stack.append(_MARK)
        elif op in ("PUT", "BINPUT", "LONG_BINPUT", "MEMOIZE"):
            if not stack or stack[-1] is _MARK:
                raise PickleRefused("memo write without a value")
            memo[len(memo) if op == "MEMOIZE" else int(arg)] = stack[-1]
        elif op in ("GET", "BINGET", "LONG_BINGET"):
            if int(arg) not in memo:
                raise PickleRefused("bad memo")
            stack.append(memo[int(arg)])
        elif op in ("BININT", "BININT1", "BININT2", "INT", "LONG", "LONG1", "LONG4", "BINUNICODE",
                    "SHORT_BINUNICODE", "UNICODE", "BINUNICODE8", "BINFLOAT", "FLOAT", "SHORT_BINSTRING",
                    "BINSTRING", "STRING"):
            stack.append(arg)
        elif op in ("NEWTRUE", "NEWFALSE", "NONE"):
            stack.append({"NEWTRUE": True, "NEWFALSE": False, "NONE": None}[op])
        elif op == "EMPTY_TUPLE":
            stack.append(())
        elif op in ("TUPLE1", "TUPLE2", "TUPLE3"):
            n = int(op[-1])
            items = [pop() for _ in range(n)][::-1]
            stack.append(tuple(items))
        elif op == "TUPLE":
            stack.append(tuple(to_mark()))
        elif op == "EMPTY_DICT":
            stack.append({})
        elif op == "DICT":
            items = to_mark()
            stack.append(dict(zip(items[::2], items[1::2], strict=True)))
        elif op == "EMPTY_LIST":
            stack.append([])
        elif op in ("APPEND", "APPENDS"):
            items = [pop()] if op == "APPEND" else to_mark()
            target = stack[-1]
            if not isinstance(target, list):
                raise PickleRefused("append to a non-list")
            target.extend(items)
        elif op in ("SETITEM", "SETITEMS"):
            if op == "SETITEM":
                value = pop()
                items = [pop(), value]
            else:
                items = to_mark()
            target = stack[-1]
            if not isinstance(target, dict) or len(items) % 2:
                raise PickleRefused("setitem on a non-dict")
            for key, value in zip(items[::2], items[1::2], strict=True):
                if isinstance(key, (dict, list)):
                    raise PickleRefused("unhashable key")
                target[key] = value
        elif op == "GLOBAL":
            module, _, name = str(arg).partition(" ")
            stack.append(glob(module, name))
        elif op == "STACK_GLOBAL":
            name = pop()
            stack.append(glob(pop(), name))
        elif op == "BINPERSID":
            pid = pop()
            if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"
                    and isinstance(pid[1], _Global) and pid[1].name in STORAGE_DTYPES
                    and isinstance(pid[2], str) and type(pid[4]) is int):
                raise PickleRefused("unexpected persistent id")
            stack.append(StorageRef(STORAGE_DTYPES[pid[1].name], pid[2], pid[4]))
        elif op == "REDUCE":
            args = pop()
            func = pop()
            if not isinstance(func, _Global) or not isinstance(args, tuple):
                raise PickleRefused("call of a non-global")
            key = (func.module, func.name)
            if key in (("collections", "OrderedDict"), ("builtins", "dict")):
                if args != ():
                    raise PickleRefused("dict with arguments")
                stack.append({})
            elif key == ("torch._utils", "_rebuild_tensor_v2"):
                stack.append(_rebuild_tensor(args))
            elif key == ("torch._utils", "_rebuild_parameter"):
                if not args or not isinstance(args[0], TensorSpec):
                    raise PickleRefused("unexpected parameter rebuild")
                stack.append(args[0])
            else:
                raise PickleRefused(f"call of {func.module}.{func.name}")
        elif op == "BUILD":
            pop()  # the state dict's `_metadata` attribute: version numbers only, not needed
            if not isinstance(stack[-1] if stack else None, dict):
                raise PickleRefused("BUILD on a non-dict")
        else:
            raise PickleRefused(f"opcode {op}")
    else:
        raise PickleRefused("no STOP")
    if stack:
        raise PickleRefused("data left on the stack")
    return result


def _is_int_tuple(value: Any) -> bool:
    return isinstance(value, tuple) and all(type(v) is int and v >= 0 for v in value)


def _rebuild_tensor(args: tuple) -> TensorSpec:
    # _rebuild_tensor_v2(storage, offset, size, stride, requires_grad, backward_hooks[, metadata])
    if len(args) not in (6, 7):
        raise PickleRefused("_rebuild_tensor_v2 with unexpected arguments")
    storage, offset, shape, stride, requires_grad, hooks = args[:6]
    extra = args[6] if len(args) == 7 else None
    if not (
        isinstance(storage, StorageRef)
        and type(offset) is int
        and _is_int_tuple(shape)
        and _is_int_tuple(stride)
        and isinstance(requires_grad, bool)
        and hooks == {}
        and extra in (None, {})
    ):
        raise PickleRefused("_rebuild_tensor_v2 with unexpected arguments")
    return TensorSpec(storage, offset, shape, stride)


def state_dict_tensors(data: bytes) -> dict[str, TensorSpec]:
    """The tensors of a `state_dict` save (or of its "state_dict" entry)."""
    result = walk_torch_pickle(data)
    if not isinstance(result, dict):
        raise PickleRefused("not a state dict")
    if "state_dict" in result and isinstance(result["state_dict"], dict):
        result = result["state_dict"]
    return {k: v for k, v in result.items() if isinstance(k, str) and isinstance(v, TensorSpec)}


def tensor_array(spec: TensorSpec, raw: bytes) -> np.ndarray:
    if spec.storage.dtype == "bf16":
        base = (np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16).view(np.float32)
    else:
        base = np.frombuffer(raw, dtype=spec.storage.dtype)
    if len(base) != spec.storage.numel:
        raise PickleRefused("storage size mismatch")
    need = spec.offset + sum((d - 1) * s for d, s in zip(spec.shape, spec.stride, strict=True)) + 1 \
        if all(spec.shape) else 0
    if spec.offset < 0 or need > len(base) or any(s < 0 for s in spec.stride):
        raise PickleRefused("tensor outside its storage")
    item = base.itemsize
    arr = np.lib.stride_tricks.as_strided(base[spec.offset:], shape=spec.shape,
                                          strides=tuple(s * item for s in spec.stride))
    return np.array(arr, dtype=np.float32 if base.dtype.kind == "f" else base.dtype)
