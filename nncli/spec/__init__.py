"""The spec room: a YAML file -> a validated ``Spec`` -> the network, loss and optimizer.

``document`` reads YAML with positions and applies ``--set`` overrides, ``fields`` and
``sections`` say what a valid spec looks like, ``loading`` turns the text into a ``Spec``,
``build`` makes engine objects from it and ``resolve`` is the one path ``train`` and
``validate`` share (device, data, input shape, ``units: auto``, loss, optimizer).
"""

from nncli.spec.loading import Spec, load, loads, resolved_yaml, to_dict

# build and resolve are submodules (``from nncli.spec import build, resolve``); importing them
# here would load the data and training rooms with every spec
__all__ = ["Spec", "build", "load", "loads", "resolve", "resolved_yaml", "to_dict"]
