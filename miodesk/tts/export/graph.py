"""A tiny helper for building ONNX graphs node by node with onnx.helper."""

from __future__ import annotations

import os
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


class GraphBuilder:
    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self._names: set[str] = set()
        self._counter = 0
        self._consts: dict[tuple, str] = {}

    def fresh(self, base: str) -> str:
        self._counter += 1
        name = f"{base}__{self._counter}"
        self._names.add(name)
        return name

    def weight(self, name: str, arr: np.ndarray) -> str:
        """A named initializer (model weights keep readable names)."""
        if name in self._names:
            name = self.fresh(name)
        self._names.add(name)
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(arr), name))
        return name

    def const(self, value: object, dtype: type | np.dtype = np.float32) -> str:
        """A small constant, shared between uses."""
        arr = np.asarray(value, dtype=dtype)
        key = (arr.dtype.str, arr.shape, arr.tobytes())
        if key not in self._consts:
            self._consts[key] = self.weight(self.fresh("const"), arr)
        return self._consts[key]

    def op(self, op_type: str, inputs: Sequence[str], n_out: int = 1, name: str | None = None,
           **attrs: Any) -> str | list[str]:
        outs = [name if (name and n_out == 1) else self.fresh(op_type.lower()) for _ in range(n_out)]
        if name and n_out == 1:
            self._names.add(name)
        self.nodes.append(helper.make_node(op_type, list(inputs), outs, **attrs))
        return outs[0] if n_out == 1 else outs

    def op1(self, op_type: str, inputs: Sequence[str], **attrs: Any) -> str:
        out = self.op(op_type, inputs, 1, **attrs)
        assert isinstance(out, str)
        return out

    def opn(self, op_type: str, inputs: Sequence[str], n_out: int, **attrs: Any) -> list[str]:
        """A node of `n_out` ≥ 2 outputs (e.g. Split), their names in order."""
        out = self.op(op_type, inputs, n_out, **attrs)
        assert isinstance(out, list)
        return out

    def identity(self, x: str, name: str) -> str:
        return self.op1("Identity", [x], name=name)


# --------------------------------------------------------------------------------------------
# building blocks both exporters use (time-major tensors are (T, C); convolutions take (1, C, T))
# --------------------------------------------------------------------------------------------
def linear(g: GraphBuilder, weights: Mapping[str, np.ndarray], x: str, weight_name: str,
           bias_name: str | None = None) -> str:
    """A torch Linear on time-major `x`: x @ W.T (+ b). W.T is stored as the initializer `{weight_name}.T`."""
    y = g.op1("MatMul", [x, g.weight(weight_name + ".T", weights[weight_name].T.astype(np.float32))])
    if bias_name is not None:
        y = g.op1("Add", [y, g.weight(bias_name, weights[bias_name].astype(np.float32))])
    return y


def layer_norm(g: GraphBuilder, x: str, scale: str, bias: str, eps: float) -> str:
    """LayerNormalization over the last axis; `scale` and `bias` are graph tensors (weights or computed)."""
    return g.op1("LayerNormalization", [x, scale, bias], axis=-1, epsilon=eps)


def time_major(g: GraphBuilder, x: str) -> str:
    """(1, C, T) → (T, C)."""
    return g.op1("Transpose", [g.op1("Squeeze", [x, g.const([0], np.int64)])], perm=[1, 0])


def channels_first(g: GraphBuilder, x: str) -> str:
    """(T, C) → (1, C, T)."""
    return g.op1("Unsqueeze", [g.op1("Transpose", [x], perm=[1, 0]), g.const([0], np.int64)])


def value_info(name: str, elem: int, shape: Sequence[int | str | None] | None) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, elem, None if shape is None else list(shape))


FLOAT = TensorProto.FLOAT
INT64 = TensorProto.INT64


def save_model_atomically(model: onnx.ModelProto, out_path: Path) -> None:
    """Write beside the target under a temporary name and rename it when complete: a crash or a full
    disk never leaves a half-written graph where the runtime would load it."""
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.parent / f".{out_path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp"
    try:
        onnx.save_model(model, str(tmp))
        os.replace(tmp, out_path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
