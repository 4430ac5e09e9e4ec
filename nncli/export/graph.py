"""``Graph``: the ONNX nodes and weights of one model as they are added, with unique names.

Converters call ``node`` (one operator, one output) and ``weight`` (a float32 or int64
constant); ``model`` wraps what they built into an ``onnx.ModelProto``.
"""

from __future__ import annotations

from typing import Any

import numpy as np


class Graph:
    """Nodes and initialisers in the order they are added; every name is unique."""

    def __init__(self, opset: int):
        from onnx import helper, numpy_helper

        self.helper, self.numpy_helper = helper, numpy_helper
        self.opset = opset
        self.nodes: list[Any] = []
        self.weights: list[Any] = []
        self._count = 0

    def name(self, hint: str) -> str:
        self._count += 1
        return f"{hint}_{self._count}"

    def weight(self, hint: str, value: Any, dtype: Any = np.float32) -> str:
        """A constant tensor (float32 by default; int64 for shapes and axes) -> its name."""
        name = self.name(hint)
        # np.array keeps a scalar 0-d (ascontiguousarray would make it (1,), which Range refuses
        # once ONNX Runtime knows a static time axis)
        array = np.array(value, dtype=dtype, order="C")
        self.weights.append(self.numpy_helper.from_array(array, name))
        return name

    def node(self, op: str, inputs: list[str], hint: str | None = None, **attrs: Any) -> str:
        """One operator with one output -> the output's name."""
        out = self.name(hint or op.lower())
        self.nodes.append(self.helper.make_node(op, inputs, [out], name=out, **attrs))
        return out

    def node_outputs(self, op: str, inputs: list[str], count: int, **attrs: Any) -> list[str]:
        """One operator with ``count`` outputs (a recurrent layer's Y and Y_h) -> their names."""
        outs = [self.name(f"{op.lower()}_out{i}") for i in range(count)]
        self.nodes.append(self.helper.make_node(op, inputs, outs, name=outs[0], **attrs))
        return outs

    def transpose(self, x: str, perm: list[int]) -> str:
        return self.node("Transpose", [x], perm=perm)

    def squeeze(self, x: str, axis: int) -> str:
        return self.node("Squeeze", [x, self.weight("axes", [axis], np.int64)])

    def model(
        self, x: str | dict[str, list[Any]], y: str, in_dims: list[Any], out_dims: list[Any],
        metadata: dict[str, str],
    ) -> Any:  # fmt: skip
        """The ModelProto: input ``x`` (or the inputs {name: dims}, ``in_dims`` then unused) and
        output ``y`` (renamed by an Identity) with their shapes (an int or a symbolic name per
        axis), float32, and the metadata props."""
        from onnx import TensorProto

        helper = self.helper
        self.nodes.append(helper.make_node("Identity", [y], ["output"], name="output"))
        inputs = x if isinstance(x, dict) else {x: in_dims}
        graph = helper.make_graph(
            self.nodes,
            "nncli",
            [helper.make_tensor_value_info(k, TensorProto.FLOAT, d) for k, d in inputs.items()],
            [helper.make_tensor_value_info("output", TensorProto.FLOAT, out_dims)],
            self.weights,
        )
        model = helper.make_model(
            graph,
            producer_name="nncli",
            opset_imports=[helper.make_opsetid("", self.opset)],
        )
        # the oldest IR version the opset allows, so older runtimes read the file too
        model.ir_version = helper.find_min_ir_version_for(list(model.opset_import))
        helper.set_model_props(model, metadata)
        return model
