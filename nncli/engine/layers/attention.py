"""Multi-head self-attention (PyTorch's ``nn.MultiheadAttention(F, H, batch_first=True)``).

Each product runs once over all heads (a batched matrix product over (N, H)); the (N, H, T, T)
weights and their gradients live in work arrays kept between batches (fresh arrays of a few MB
cost page faults on every batch). Without a mask, the softmax and its backward are fused on
the CPU (numba: ``softmax_loops`` below the layer, loaded by ``kernels.py``); ``masked_softmax``
and ``softmax_backward``'s numpy line are the reference and every other path."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from nncli.backend import array_module
from nncli.engine import checks, kernels
from nncli.engine.initializers import GlorotUniform, LinearDefault
from nncli.engine.layer import Layer, Shape
from nncli.engine.layers.dense import bias_sum
from nncli.engine.layers.dropout import Dropout
from nncli.engine.layers.recurrent.loop import WorkArrays
from nncli.engine.registry import LAYERS
from nncli.errors import SpecError


def head_size(layer: Layer, features: int, heads: int) -> int:
    """F / H, the width of one head; a SpecError naming the layer, F and heads otherwise."""
    if features % heads:
        divisors = [h for h in range(1, features + 1) if features % h == 0]
        field = "heads" if layer.index is None else f"layers[{layer.index}].heads"
        raise SpecError(
            f"{layer.label}: heads must divide the input's {features} features, got heads "
            f"{heads} (F = {features} takes {', '.join(map(str, divisors))})",
            field=field,
        )
    return features // heads


def heads_over_steps(layer: Layer, in_shape: Shape, heads: int) -> Shape:
    """The output shape of ``heads`` heads over sequences (T, F): the input's, once the input
    is a sequence and ``heads`` divides F (``head_size``)."""
    layer.require_sequences(in_shape)
    head_size(layer, in_shape[-1], heads)
    return tuple(in_shape)


def masked_softmax(scores: Any, allowed: Any) -> Any:
    """softmax over the last axis of the ``allowed`` entries alone (0 elsewhere); a row with
    nothing allowed gives zeros instead of PyTorch's NaN."""
    xp = array_module(scores)
    if allowed is None:
        e = xp.exp(scores - scores.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)
    scores = xp.where(allowed, scores, -xp.inf)
    top = scores.max(axis=-1, keepdims=True)
    e = xp.exp(scores - xp.where(top > -xp.inf, top, 0))  # exp(-inf) = 0 where not allowed
    total = e.sum(axis=-1, keepdims=True)
    return e / xp.where(total > 0, total, 1)


def softmax(scores: Any, allowed: Any) -> Any:
    """``masked_softmax``, in place in ``scores`` (fused, numba) where no mask is given and the
    kernels take the array; otherwise a fresh array from the numpy reference."""
    if allowed is not None or not kernels.usable(scores):
        return masked_softmax(scores, allowed)
    rows = scores.reshape(-1, scores.shape[-1])
    loops = kernels.compiled(softmax_loops)
    loops["shift"](rows)
    np.exp(rows, out=rows)  # numpy's exp vectorises; a compiled loop would call libm
    loops["normalize"](rows)
    return scores


def softmax_backward(a: Any, da: Any) -> Any:
    """dL/d(scores) = a (da - sum(da a)) of softmax weights ``a`` (last axis), in place in
    ``da`` where the kernels take both arrays (numba), else a fresh array (numpy)."""
    if not kernels.usable(da, a):
        return a * (da - (da * a).sum(axis=-1, keepdims=True))
    kernels.compiled(softmax_loops)["backward"](
        a.reshape(-1, a.shape[-1]), da.reshape(-1, da.shape[-1])
    )
    return da


@LAYERS.register("attention")
class Attention(Layer):
    """y = concat_h(softmax(q_h k_h^T / sqrt(d) + masks) v_h) W_out^T + b_out,
    [q, k, v] = x W_in^T + b_in, split into H heads of d = F / H features each.

    x (N, T, F) -> y (N, T, F); in_proj_weight (3F, F), in_proj_bias (3F,), out_proj_weight
    (F, F), out_proj_bias (F,) (PyTorch's q, k, v blocks). Padded steps (the network's mask) are
    masked as keys (PyTorch's ``key_padding_mask``) and output zeros; ``causal`` lets step t see
    steps <= t only. ``dropout`` drops attention weights in training, as PyTorch does.
    """

    examples: ClassVar = [
        ({"heads": 2}, (4, 6)),
        ({"heads": 3, "causal": True, "dropout": 0.25}, (5, 6)),
    ]
    any_steps = True
    # the parameters' names inside PyTorch's module (its out projection is a Linear submodule):
    # what the transformer layer calls them under ``self_attn.``
    torch_names: ClassVar = {
        "in_proj_weight": "in_proj_weight",
        "in_proj_bias": "in_proj_bias",
        "out_proj_weight": "out_proj.weight",
        "out_proj_bias": "out_proj.bias",
    }

    def __init__(self, heads: int, causal: bool = False, dropout: float = 0.0):
        super().__init__(None)
        self.heads = checks.positive_int("heads", heads)
        self.causal = checks.boolean("causal", causal)
        self.weight_dropout = Dropout(checks.number("dropout", dropout, 0.0, 1.0, high_open=True))

    def param_shapes(self, in_shape: Shape) -> dict[str, Shape]:
        f = in_shape[-1]
        return {
            "in_proj_weight": (3 * f, f),
            "in_proj_bias": (3 * f,),
            "out_proj_weight": (f, f),
            "out_proj_bias": (f,),
        }

    def output_shape(self, in_shape: Shape) -> Shape:
        return heads_over_steps(self, in_shape, self.heads)

    def _build(self, in_shape: Shape, rng: np.random.Generator) -> Shape:
        self.output_shape(in_shape)
        features = in_shape[-1]
        self.head_size = head_size(self, features, self.heads)
        self.params["in_proj_weight"] = GlorotUniform()(
            (3 * features, features), features, 3 * features, rng
        )
        self.params["in_proj_bias"] = np.zeros(3 * features)
        self.params["out_proj_weight"] = LinearDefault()((features, features), features, 0, rng)
        self.params["out_proj_bias"] = np.zeros(features)
        self.work = WorkArrays()  # the weights and other (N, H, T, .) arrays, between batches
        steps = in_shape[0]  # the weights' dropout acts on (N, H, T, T); it draws nothing here
        self.weight_dropout.build((self.heads, steps, steps), self.backend, rng)
        return in_shape

    def set_rng(self, rng: np.random.Generator) -> None:
        self.weight_dropout.set_rng(rng)

    def reset_rng(self) -> None:
        self.weight_dropout.reset_rng()

    def _allowed(self, x: Any) -> Any:
        """(N or 1, 1, T, T) booleans: which key each query may see; None when all of them."""
        xp, steps = self.backend.xp, x.shape[1]
        allowed = None
        if self.causal:
            position = xp.arange(steps)
            allowed = position[None, :] <= position[:, None]  # key <= query
        real = self.real_steps(x)  # (N, T, 1)
        if real is not None:
            keys = real[:, None, None, :, 0]
            allowed = keys if allowed is None else keys & allowed
        return allowed

    def forward(self, x: Any, training: bool = False) -> Any:
        self.check_input(x)
        xp, p, (n, steps, features) = self.backend.xp, self.params, x.shape
        shape, work = (n, self.heads, steps, self.head_size), self.work
        self.x = x
        qkv = x.reshape(-1, features) @ p["in_proj_weight"].T  # (N T, 3F): one product
        qkv += p["in_proj_bias"]
        qkv = qkv.reshape(n, steps, 3, self.heads, self.head_size).transpose(2, 0, 3, 1, 4)
        self.scale = 1.0 / np.sqrt(self.head_size)
        self.q = work.get("q", shape, x.dtype, xp)  # q / sqrt(d), (N, H, T, d)
        xp.multiply(qkv[0], self.scale, out=self.q)
        self.k, self.v = qkv[1], qkv[2]  # (N, H, T, d) views
        scores = work.get("weights", (n, self.heads, steps, steps), x.dtype, xp)
        xp.matmul(self.q, self.k.swapaxes(-1, -2), out=scores)
        self.weights = softmax(scores, self._allowed(x))
        self.weight_dropout.batch_share = self.batch_share
        self.drop = self.weight_dropout.draw_scale(scores.shape) if training else None
        self.kept = self.weights if self.drop is None else self.weights * self.drop
        o = work.get("o", (n, steps, self.heads, self.head_size), x.dtype, xp)
        xp.matmul(self.kept, self.v, out=o.transpose(0, 2, 1, 3))  # heads side by side
        self.o = o.reshape(n, steps, features)
        y = self.o.reshape(-1, features) @ p["out_proj_weight"].T
        y += p["out_proj_bias"]
        y = y.reshape(n, steps, features)
        self.real = self.real_steps(x, x.dtype)
        return y if self.real is None else y * self.real

    def backward(self, dy: Any) -> Any:
        """Back through the out projection, the weighted sum, the softmax (ds = a (da -
        sum(da a))), the scaled product and the in projection."""
        xp, p, g = self.backend.xp, self.params, self.grads
        n, steps, features = dy.shape
        if self.real is not None:
            dy = dy * self.real
        dy_rows = dy.reshape(-1, features)
        xp.matmul(dy_rows.T, self.o.reshape(-1, features), out=g["out_proj_weight"])
        bias_sum(dy_rows, g["out_proj_bias"], self.backend.name)
        do = dy_rows @ p["out_proj_weight"]
        do = do.reshape(n, steps, self.heads, self.head_size).transpose(0, 2, 1, 3)
        dqkv = xp.empty((n, steps, 3, self.heads, self.head_size), dtype=dy.dtype)
        dq, dk, dv = dqkv.transpose(2, 0, 3, 1, 4)  # (N, H, T, d) views into (N, T, 3F)
        xp.matmul(self.kept.swapaxes(-1, -2), do, out=dv)
        dweights = self.work.get("dweights", self.weights.shape, dy.dtype, xp)
        xp.matmul(do, self.v.swapaxes(-1, -2), out=dweights)
        if self.drop is not None:
            dweights *= self.drop
        dscores = softmax_backward(self.weights, dweights)
        xp.matmul(dscores, self.k, out=dq)
        dq *= self.scale
        xp.matmul(dscores.swapaxes(-1, -2), self.q, out=dk)  # self.q is q / sqrt(d)
        dqkv_rows = dqkv.reshape(-1, 3 * features)
        xp.matmul(dqkv_rows.T, self.x.reshape(-1, features), out=g["in_proj_weight"])
        bias_sum(dqkv_rows, g["in_proj_bias"], self.backend.name)
        if self.skip_input_grad:
            return None
        return (dqkv_rows @ p["in_proj_weight"]).reshape(n, steps, features)

    def config(self) -> dict[str, Any]:
        return {
            "type": self.type_name,
            "heads": self.heads,
            "causal": self.causal,
            "dropout": self.weight_dropout.rate,
        }


def softmax_loops(jit: Any, inline: Any) -> dict[str, Any]:
    """The softmax over rows (R, T) around numpy's exp, and its backward, for ``numba.njit``,
    each in place: ``shift(s)`` s - max of its row; ``normalize(e)`` e / sum of its row;
    ``backward(a, d)`` d = a (d - sum(d a)) over each row. One pass each, against numpy's
    two or three passes and a fresh array for each step."""

    @jit
    def shift(s):  # noqa: ANN001
        for r in range(s.shape[0]):
            top = s[r, 0]
            for j in range(1, s.shape[1]):
                top = s[r, j] if s[r, j] > top else top  # a NaN row stays NaN: s - top
            for j in range(s.shape[1]):
                s[r, j] -= top

    @jit
    def normalize(e):  # noqa: ANN001
        for r in range(e.shape[0]):
            total = e.dtype.type(0)
            for j in range(e.shape[1]):
                total += e[r, j]
            for j in range(e.shape[1]):
                e[r, j] /= total

    @jit
    def backward(a, d):  # noqa: ANN001
        for r in range(a.shape[0]):
            total = a.dtype.type(0)
            for j in range(a.shape[1]):
                total += d[r, j] * a[r, j]
            for j in range(a.shape[1]):
                d[r, j] = a[r, j] * (d[r, j] - total)

    return {"shift": shift, "normalize": normalize, "backward": backward}
