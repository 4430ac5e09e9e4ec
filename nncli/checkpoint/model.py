"""Networks <-> checkpoints: what a trained run saves and what predict, evaluate, inspect and
``--resume`` read back. The embedded spec is treated as untrusted text: nothing here reads or
writes a path taken from it; layers are rebuilt through the engine's registries."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nncli import checkpoint
from nncli.backend import Backend, get_backend, versions
from nncli.checkpoint.contents import Contents, check_built, layer_check
from nncli.engine import LOSSES
from nncli.engine.history import History
from nncli.engine.losses import Loss
from nncli.engine.network import Network
from nncli.engine.optimizers import Optimizer
from nncli.errors import CheckpointError, NncliError


@dataclass
class Model:
    """A network with everything needed to apply it, and how it was trained."""

    net: Network
    loss: Loss
    data: dict[str, Any]  # input_shape, loss, task, labels, encoder state (kind-specific)
    spec_yaml: str = ""
    training: dict[str, Any] = field(default_factory=dict)
    optimizer: checkpoint.OptimizerRecord | None = None
    path: Path | None = None

    @property
    def encoder_state(self) -> dict[str, Any]:
        return self.data.get("encoder", {})

    @property
    def target_scale(self) -> np.ndarray | None:
        """(k,) from scaled targets to the file's units, for metrics; None: targets unscaled."""
        scale = self.data.get("target_scale")
        return None if scale is None else np.asarray(scale, dtype=np.float64)

    @property
    def labels(self) -> list[str] | None:
        labels = self.data.get("labels")
        return None if labels is None else list(labels)


def _layer_records(net: Network) -> list[checkpoint.LayerRecord]:
    """Each layer's arrays and config, its ``name``/``inputs`` included: the graph is stored in
    the configs, and a stack's are those it always had."""
    return [
        checkpoint.LayerRecord(
            index=layer.index,
            type=layer.type_name,
            config=config,
            params={k: net.backend.to_host(v) for k, v in layer.params.items()},
            state={k: net.backend.to_host(v) for k, v in layer.state.items()},
        )
        for layer, config in zip(net.layers, net.config(), strict=True)
    ]


def _loss_settings(loss: Loss) -> dict[str, Any]:
    """``{"loss_settings": {...}}`` for a loss with settings (label_smoothing), else nothing."""
    cfg = loss.config()
    if not isinstance(cfg, dict):
        return {}
    return {"loss_settings": {k: v for k, v in cfg.items() if k != "type"}}


def history_columns(history: History) -> dict[str, np.ndarray]:
    keys = sorted({k for e in history.epochs for k in e}, key=lambda k: (k != "epoch", k))
    return {k: np.asarray(history.column(k), dtype=np.float64) for k in keys}


def save(
    path: Path,
    *,
    net: Network,
    loss: Loss,
    data: dict[str, Any],
    spec_yaml: str,
    optimizer: Optimizer | None,
    history: History,
    seed: int,
    resume_weights: dict[str, np.ndarray] | None = None,
    scores: dict[str, float] | None = None,
    schedule: dict[str, Any] | None = None,
    data_sha256: str | None = None,
) -> None:
    """Write one checkpoint atomically (a temporary file, then a rename). ``scores``: extra
    scalars for the training record, e.g. ``test_loss`` and ``test_accuracy``; ``schedule``: the
    learning-rate schedule's state; ``data_sha256``: the training data's content digest
    (``nncli.data.digest``), by which evaluate knows the file a model was trained on."""
    epochs = history.epochs
    training: dict[str, Any] = {
        "epoch": int(epochs[-1]["epoch"]) if epochs else 0,
        "best_epoch": history.best_epoch,
        "best_value": history.best_value,
        "seed": int(seed),
        "history": history_columns(history),
        "device": net.backend.label,  # where it was trained; the arrays are host arrays
        "versions": versions(net.backend),
    }
    training.update({k: float(v) for k, v in (scores or {}).items()})
    if resume_weights is not None:
        training["resume_weights"] = dict(resume_weights)
    if schedule:  # the learning-rate schedule's state, for an exact resume
        training["schedule"] = dict(schedule)
    if data_sha256:
        training["data_sha256"] = data_sha256
    if history.mlflow_run_id:  # the run a --resume continues logging to
        training["mlflow_run_id"] = history.mlflow_run_id
    record = None
    if optimizer is not None:
        record = checkpoint.OptimizerRecord(
            type=optimizer.type_name, step=optimizer.step_count, state=optimizer.export_state()
        )
    ckpt = checkpoint.Checkpoint(
        spec_yaml=spec_yaml,
        layers=_layer_records(net),
        optimizer=record,
        data={**data, "loss": loss.type_name, **_loss_settings(loss)},
        training=training,
    )
    checkpoint.save(path, ckpt)


def load(path: str | Path, device: str = "cpu", dtype: str | None = None) -> Model:
    """Rebuild the network of a checkpoint and load its weights, checking everything in it
    against everything else first (``contents.py``; CheckpointError on any doubt)."""
    path = Path(path)
    ckpt = checkpoint.load(path)
    data, check = ckpt.data, Contents(path)
    input_shape = check.input_shape(data)
    check.data(data)
    check.layers(ckpt.layers)
    backend: Backend = get_backend(device, dtype or str(data.get("dtype", "float32")))
    try:
        records = sorted(ckpt.layers, key=lambda r: r.index)
        configs = [dict(layer.config) for layer in records]
        net = Network(configs, input_shape, backend=backend, check=layer_check(records))
        net.set_weights(
            {
                f"{r.index}.{r.type}.{k}": v
                for r in ckpt.layers
                for k, v in {**r.params, **r.state}.items()
            }
        )
        loss = LOSSES.create(str(data["loss"]), data.get("loss_settings"))
    except NncliError as exc:
        raise CheckpointError(
            f"the checkpoint's model cannot be rebuilt: {exc}", where=str(path)
        ) from None
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(
            f"not a complete nncli model ({type(exc).__name__}: {exc})", where=str(path)
        ) from None
    check_built(ckpt, net, path)
    return Model(
        net=net,
        loss=loss,
        data=data,
        spec_yaml=ckpt.spec_yaml,
        training=ckpt.training,
        optimizer=ckpt.optimizer,
        path=path,
    )
