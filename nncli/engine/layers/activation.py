"""Each activation as a layer of its own (``- relu``, ``{type: leaky_relu, slope: 0.2}``): one
registered layer per entry of ``ACTIVATIONS`` (``activations.py``), taking the activation's
settings."""

from __future__ import annotations

import inspect
from typing import Any, ClassVar

from nncli.engine.activations import ACTIVATIONS  # filled by that module, before the loop below
from nncli.engine.layer import Layer, Shape
from nncli.engine.registry import LAYERS


class ActivationLayer(Layer):
    """An activation on its own, as a layer with no parameters."""

    activation_name = "linear"
    examples: ClassVar = [({}, (5,)), ({}, (2, 3))]
    any_steps = True

    def __init__(self, **settings: Any):
        super().__init__(activation={"type": self.activation_name, **settings})

    def forward(self, x: Any, training: bool = False) -> Any:
        self.check_input(x)
        return self._activate(x)

    def backward(self, dy: Any) -> Any:
        return self._activate_backward(dy)

    def config(self) -> dict[str, Any]:
        cfg = self.activation.config()
        return dict(cfg) if isinstance(cfg, dict) else {"type": cfg}

    def _build(self, in_shape: Shape, rng: Any) -> Shape:
        return in_shape


def _register_activation_layers() -> None:
    for name in ACTIVATIONS.names():
        act_cls = ACTIVATIONS.get(name)
        cls = type(f"{act_cls.__name__}Layer", (ActivationLayer,), {"activation_name": name})
        # the layer takes exactly the activation's settings (e.g. slope for leaky_relu)
        cls.__init__ = _with_signature(act_cls)
        LAYERS.register(name)(cls)


def _with_signature(act_cls: type) -> Any:
    def __init__(self: ActivationLayer, **settings: Any) -> None:
        ActivationLayer.__init__(self, **settings)

    takes_settings = act_cls.__init__ is not object.__init__
    # an activation without settings (relu, tanh, ...) makes a layer without settings
    signature = inspect.signature(act_cls.__init__ if takes_settings else lambda self: None)
    __init__.__signature__ = signature  # type: ignore[attr-defined]
    return __init__


_register_activation_layers()
