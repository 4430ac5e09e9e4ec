"""What ``nncli train`` checks around a run: that no file it writes is one of its inputs (before
it starts), and that a smoke run's checkpoint predicts as the network it saved (after)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from nncli.bounds.files import output_problem
from nncli.checkpoint import folder as outputs
from nncli.checkpoint import model as model_io
from nncli.errors import CheckpointError, DataError, SpecError
from nncli.training.loop import predict

if TYPE_CHECKING:
    from nncli.spec import Spec


def refuse_outputs_on_inputs(
    spec: Spec, output: Path | None = None, resume: Path | None = None
) -> tuple[Path, outputs.RunFiles]:
    """The run's checkpoint path and files, after checking the path can hold a checkpoint
    (``files.output_problem``) and no file the run writes is one of its inputs (the spec, the
    data, and the checkpoint it resumes from unless it continues it)."""
    out = Path(output or spec.output)
    field, where = ("--output", None) if output else ("output", spec.line_of("output"))
    outputs.check_kind(out, field, example=out / "model.h5")  # a folder: name a file inside it
    problem = output_problem(out)
    if problem is not None:
        raise SpecError(f"cannot write a checkpoint there: {problem}", field=field, where=where)
    files = outputs.run_files(out)
    inputs = [getattr(spec.data, key, None) for key in ("path", "validation", "test")]
    inputs += [spec.source, None if outputs.continues(files, resume) else resume]
    inputs.append(spec.model.init_from)
    outputs.check_outputs(files.written(), inputs)
    return out, files


def check_round_trip(
    path: Path, net: Any, x: np.ndarray, mask: np.ndarray | None, device: str, dtype: str
) -> None:
    expected = predict(net, x, mask=mask)
    got = predict(model_io.load(path, device, dtype).net, x, mask=mask)
    if not np.isfinite(got).all():
        raise DataError("smoke run: the reloaded model predicts non-finite values")
    if not np.allclose(got, expected, atol=1e-5, rtol=1e-5):
        raise CheckpointError("smoke run: the reloaded model predicts differently", where=str(path))
