"""The layer contract every layer follows (ARCHITECTURE.md, "The layer contract").

A layer owns ``params`` and ``grads`` (same keys and shapes), makes its parameters in ``build``
from the input shape (batch left out), keeps in ``forward`` what ``backward`` needs, and in
``backward`` fills ``grads`` and returns the gradient with respect to its input.

``state`` holds non-trainable arrays (batchnorm's running statistics): made in ``_build`` like
the parameters, changed only by ``forward(training=True)``, never by an optimizer, and saved and
restored beside the parameters. Most layers have none.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from nncli.backend import Backend
from nncli.engine import checks
from nncli.engine.activations import make_activation
from nncli.engine.initializers import Initializer, make_initializer
from nncli.errors import ShapeError

Shape = tuple[int, ...]


def shape_of(dims: Any) -> Shape:
    return tuple(int(d) for d in dims)


def shapes_of(shapes: Any) -> tuple[Shape, ...]:
    """A merge's input shapes, one per input."""
    return tuple(shape_of(shape) for shape in shapes)


class Layer:
    """Base class: shape checks, the optional output activation, and bookkeeping.

    Every hook and flag a layer has is declared here with its default, so the network and the
    layers' own parts set and call them without asking whether they exist: what the network
    sets on a layer is a public attribute below, what a layer may do differently is a method
    it overrides. No code outside a layer's module reads or sets its private (``_``) state.
    """

    # -- what the class declares -------------------------------------------------------------
    type_name: ClassVar[str] = "layer"
    # (settings, input shape) pairs the registry-driven gradient check builds; every layer
    # registers at least one, so a new layer is checked the day it is registered
    examples: ClassVar[list[tuple[dict[str, Any], Shape]]] = []
    # Layers that act on the last axis alone (dense, dropout, activations) take any middle axes:
    # after a recurrent layer with return_sequences the steps T differ from batch to batch
    any_steps: ClassVar[bool] = False
    # the input is integer ids below this setting's value (embedding), not real numbers: the
    # gradient check draws ids (``id_count``) and checks no input gradient
    integer_input: ClassVar[str | None] = None
    # a merge (add, multiply, concat): ``forward`` takes a list of two or more arrays and
    # ``backward`` returns the list of their gradients; the shapes ``build``, ``output_shape``
    # and ``param_shapes`` take are then a list of shapes, one per input
    several_inputs: ClassVar[bool] = False

    # -- what the network sets (a composed layer passes them on to its parts) ----------------
    # on its first layer while training: nobody needs dL/dx there, so ``backward`` may return
    # None instead of computing it
    skip_input_grad: bool = False
    # data parallelism (nncli/training/parallel.py): set while a batch is shared between
    # processes. ``batch_sum`` sums a 1-D array of per-batch statistics over every process
    # (batchnorm); ``batch_share`` is (first row, global rows) of this process's rows in the
    # global batch (dropout draws the global batch's masks and keeps its rows).
    # None: this process holds the whole batch, as in a single-process run.
    batch_sum: Any = None
    batch_share: tuple[int, int] | None = None
    # when the layer right behind took this layer's ReLU over (``take_relu``): the output
    # is the pre-activation, and ``backward`` passes dy straight through
    activation_deferred: bool = False
    # what a merge's inputs are called in its errors (``'h'``, ``layers[2] (dense)``), set by
    # the network; empty: ``input 1``, ``input 2``, ...
    input_labels: tuple[str, ...] = ()
    # set by a composed layer (residual) on its parts: the place of the whole, before theirs
    within: str = ""
    # the spec's ``trainable`` (any layer may take it, ``take_trainable``): False freezes the
    # layer's parameters (no optimizer step, no optimizer state) and runs a batchnorm on its
    # running statistics, which then stay fixed (Keras's frozen BatchNormalization); a composed
    # layer that is frozen freezes its parts
    trainable: bool = True

    def __init__(self, activation: str | dict | None = None):
        self.activation = make_activation(activation) if activation is not None else None
        self.params: dict[str, Any] = {}
        self.grads: dict[str, Any] = {}
        self.state: dict[str, Any] = {}  # non-trainable arrays, e.g. running statistics
        self.in_shape: Shape | None = None
        self.out_shape: Shape | None = None
        self.backend: Backend | None = None
        self.index: int | None = None  # the place in the network, set by it (labels errors)
        self.mask: Any = None  # (N, T) booleans for padded sequences, set by the network
        self.fused_output = False  # set by the network: the loss takes the logits
        self.logits: Any = None  # the pre-activation, kept while ``fused_output``
        self.initializers: dict[str, Initializer] = {}  # field -> initialiser given in the spec
        # after build: how each output size was worked out, and what it throws away (a
        # summary's notes and warnings; conv2d and the 2-D pools fill them)
        self.size_notes: list[str] = []
        self.warnings: list[str] = []

    # -- hooks with defaults, for the layers that differ -------------------------------------
    def set_rng(self, rng: np.random.Generator) -> None:
        """Take the generator for training-time randomness (dropout's masks), handed over by
        the network each epoch. Layers without randomness ignore it."""

    def reset_rng(self) -> None:
        """Draw the same randomness on every call (for the numerical gradient check)."""

    def take_relu(self) -> bool:
        """Asked by the network of the layer right behind one whose activation is a ReLU: True
        when this layer applies that ReLU to its own output instead (a max-pool, where the two
        commute), so the layer before leaves it out (``activation_deferred``)."""
        return False

    def id_count(self) -> int | None:
        """For ``integer_input`` layers, how many ids the input takes (0 .. count - 1); None
        for real-valued input."""
        return None

    def frozen_names(self) -> set[str]:
        """The names of the ``params`` no optimizer may change: all of them on a frozen layer;
        a composed layer adds its frozen parts'."""
        return set() if self.trainable else set(self.params)

    def learns(self) -> bool:
        """Whether training changes any of its parameters (backward computes their gradients)."""
        return bool(set(self.params) - self.frozen_names())

    def sublayers(self) -> dict[str, Layer]:
        """The layers a composed layer (residual, transformer) is made of, by the prefix of
        their parameters' names, once built (``inspect`` counts each one's parameters)."""
        return {}

    # -- to override -------------------------------------------------------------------------
    def array_shapes(self, in_shape: Shape) -> dict[str, Shape]:
        """Every parameter and state array ``build`` makes for ``in_shape`` (``param_shapes``
        and ``state_shapes``), worked out without making one: a checkpoint's loader compares
        them with the arrays it holds, and ``validate`` estimates memory, before anything is
        allocated."""
        return {**self.param_shapes(in_shape), **self.state_shapes(in_shape)}

    def _build(self, in_shape: Shape, rng: np.random.Generator) -> Shape:
        """Make parameters (on the host, from ``rng``) and return the output shape."""
        return in_shape

    def forward(self, x: Any, training: bool = False) -> Any:
        raise NotImplementedError

    def backward(self, dy: Any) -> Any:
        raise NotImplementedError

    def output_mask(self, mask: Any) -> Any:
        """The (N, T') padding mask of this layer's output from its input's (N, T) one: the
        same for layers that keep the steps; windows over time (conv1d, pools) change it."""
        return mask

    def real_steps(self, x: Any, dtype: Any = bool) -> Any:
        """(N, T, 1) of the real steps (``dtype``: bool, or the float of x for weights) of a
        masked sequence batch x; None when there is no mask or x is not (N, T, F)."""
        if self.mask is None or x.ndim != 3:
            return None
        if tuple(self.mask.shape) != tuple(x.shape[:2]):
            raise ShapeError(
                f"{self.label} expects a padding mask of shape {tuple(x.shape[:2])}, "
                f"got {tuple(self.mask.shape)}"
            )
        return self.backend.xp.asarray(self.mask, dtype=dtype)[..., None]

    # -- shapes without allocating: a network's memory is known before it is built, and stored
    # weights can be checked against their layer's config (tests compare every layer with a build)
    def param_shapes(self, in_shape: Shape) -> dict[str, Shape]:
        """{name: shape} of the ``params`` ``build`` makes for ``in_shape``, without allocating
        any. Layers with parameters override it."""
        return {}

    def state_shapes(self, in_shape: Shape) -> dict[str, Shape]:
        """{name: shape} of the ``state`` ``build`` makes (batchnorm's running statistics)."""
        return {}

    def output_shape(self, in_shape: Shape) -> Shape:
        """The output shape ``build`` gives for ``in_shape``, without allocating. A layer without
        arrays allocates nothing in ``_build``, so that answers; layers with arrays override it."""
        return tuple(int(d) for d in self._build(tuple(in_shape), np.random.default_rng(0)))

    def config(self) -> dict[str, Any]:
        """The spec keys that rebuild this layer."""
        cfg: dict[str, Any] = {"type": self.type_name}
        if self.activation is not None:
            cfg["activation"] = self.activation.config()
        return cfg

    # -- shared machinery --------------------------------------------------------------------
    def initializer(
        self, field: str, given: str | dict | None, default: str | dict | Initializer | None = None
    ) -> Initializer:
        """The initialiser for ``field``: ``given``, else ``default`` (None: He for a relu-like
        output activation, else Glorot). One given that differs from the default is kept in
        ``initializers``, which ``initializer_config`` writes back."""
        made = make_initializer(default if given is None else given, self.output_activation, field)
        if given is not None and given != default:
            self.initializers[field] = made
        return made

    def initializer_config(self) -> dict[str, Any]:
        """The kept initialisers as config keys; a layer's ``config`` ends with them."""
        return {field: init.config() for field, init in self.initializers.items()}

    @property
    def place(self) -> str:
        """``layers[2]``, ``layers[2].layers[0]`` for a residual's part (the spec's path)."""
        return "layer" if self.index is None else f"{self.within}layers[{self.index}]"

    @property
    def label(self) -> str:
        return f"{self.place} ({self.type_name})"

    def build(self, in_shape: Shape, backend: Backend, rng: np.random.Generator) -> Shape:
        self.in_shape = shapes_of(in_shape) if self.several_inputs else shape_of(in_shape)
        self.backend = backend
        self.out_shape = tuple(int(d) for d in self._build(self.in_shape, rng))
        self.params = {k: backend.asarray(v) for k, v in self.params.items()}
        self.grads = {k: backend.xp.zeros_like(v) for k, v in self.params.items()}
        self.state = {k: backend.asarray(v) for k, v in self.state.items()}
        assert not set(self.state) & set(self.params), "state and parameter names overlap"
        return self.out_shape

    def require_sequences(self, in_shape: Shape) -> None:
        """ShapeError unless ``in_shape`` is a sequence's (T, F): the batch's (N, T, F)."""
        if len(in_shape) != 2:
            got = ", ".join(["N", *map(str, in_shape)])
            raise ShapeError(f"{self.label} expects sequences (N, T, F), got ({got})")

    def check_input(self, x: Any, shape: Shape | None = None) -> None:
        """Raise ``ShapeError`` when ``x`` is not ``(N, *in_shape)`` (for ``any_steps`` layers:
        the same number of axes and the same last axis); a merge gives each input's ``shape``."""
        want = self.in_shape if shape is None else shape
        got = tuple(x.shape[1:])
        if self.any_steps and len(got) == len(want or ()):
            got, want = got[-1:], want[-1:]
        if got != want:
            want = ", ".join(["N", *map(str, self.in_shape if shape is None else shape)])
            raise ShapeError(f"{self.label} expects ({want}), got {tuple(x.shape)}")

    def _activate(self, z: Any) -> Any:
        if self.fused_output:
            self.logits = z
        if self.activation is None or self.activation_deferred:
            return z
        return self.activation.forward(z)

    def _activate_backward(self, dy: Any) -> Any:
        """dL/dz from dL/dy; with a fused loss ``dy`` already is dL/dz."""
        if self.activation is None or self.fused_output or self.activation_deferred:
            return dy
        return self.activation.backward(dy)

    @property
    def output_activation(self) -> str | None:
        return None if self.activation is None else self.activation.type_name

    def frozen_count(self) -> int:
        """Parameters that training leaves as they are (``trainable: false``)."""
        frozen = self.frozen_names()
        return int(sum(int(np.prod(p.shape)) for k, p in self.params.items() if k in frozen))

    def parameter_count(self) -> int:
        return int(sum(int(np.prod(p.shape)) for p in self.params.values()))

    def state_count(self) -> int:
        """Non-trainable values (running statistics)."""
        return int(sum(int(np.prod(a.shape)) for a in self.state.values()))

    def __repr__(self) -> str:
        count = self.parameter_count()
        return f"{type(self).__name__}({self.in_shape} => {self.out_shape})  # {count} parameters"


LAYER_KEYS = ("trainable",)  # what any layer's mapping may hold beside its own settings


def take_trainable(settings: dict[str, Any]) -> bool:
    """Remove the ``trainable`` key any layer's settings may hold -> its value (True when
    absent); a value that is not a boolean is a ``SpecError`` naming the key."""
    return checks.boolean("trainable", settings.pop("trainable", True))


def written_config(layer: Layer) -> dict[str, Any]:
    """A layer's config with ``trainable: false`` when it is frozen (what a checkpoint stores
    and a resolved spec shows)."""
    return layer.config() | ({} if layer.trainable else {"trainable": False})


def frozen_keys(layers: list[Layer]) -> set[str]:
    """The network's names (``0.dense.weight``) of the layers' frozen parameters."""
    return {f"{one.index}.{one.type_name}.{k}" for one in layers for k in one.frozen_names()}
