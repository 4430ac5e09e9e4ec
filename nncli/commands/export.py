"""``nncli export``: a checkpoint as a file another runtime serves (ONNX)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nncli.errors import SpecError

FORMATS = {".onnx": "onnx"}


def export_format(output: Path, given: str | None) -> str:
    """``--format``, else the output's suffix; SpecError naming the choices otherwise."""
    choices = sorted(set(FORMATS.values()))
    fmt = given or FORMATS.get(output.suffix.lower())
    if fmt not in choices:
        found = f"--format {given}" if given else f"the suffix {output.suffix or '(none)'!r}"
        raise SpecError(
            f"expected a format of {', '.join(choices)} (from --format or the output's suffix "
            f"{', '.join(FORMATS)}), got {found}",
            field="--format" if given else "--output",
        )
    return fmt


def check_opset(opset: int) -> None:
    from onnx.defs import onnx_opset_version

    from nncli.export import MIN_OPSET

    newest = onnx_opset_version()
    if not MIN_OPSET <= opset <= newest:
        raise SpecError(
            f"expected an opset from {MIN_OPSET} to {newest} (this onnx package's newest), "
            f"got {opset}",
            field="--opset",
        )


def require_onnx() -> None:
    try:
        import onnx  # noqa: F401
    except ImportError:
        raise SpecError(
            'exporting to ONNX needs the onnx package: pip install -e ".[onnx]"', field="--format"
        ) from None


def export_checkpoint(
    checkpoint: Path, output: Path, *, opset: int | None = None, fmt: str | None = None,
    force: bool = False,
) -> dict[str, Any]:  # fmt: skip
    """Write ``checkpoint`` as ``output`` -> what was written (path, format, opset, nodes,
    whether an earlier file was replaced). Outputs follow the one output rule
    (``nncli.checkpoint.outputs``): an existing file needs ``force``."""
    from nncli.checkpoint.outputs import check_output

    export_format(output, fmt)
    replaced = check_output(output, [checkpoint], force=force)
    require_onnx()
    from nncli import export
    from nncli.checkpoint.folder import write_atomic

    opset = export.DEFAULT_OPSET if opset is None else opset
    check_opset(opset)
    model = onnx_of(checkpoint, opset)
    write_atomic(output, model.SerializeToString())
    return {"path": output, "format": "onnx", "opset": opset, "nodes": len(model.graph.node),
            "replaced": replaced}  # fmt: skip


def onnx_of(checkpoint: Path, opset: int) -> Any:
    """The checked ONNX model of a checkpoint (CheckpointError exit 4 for a newer one)."""
    import onnx

    from nncli import export
    from nncli.commands.predictor import Predictor

    predictor = Predictor.load(checkpoint)
    built = export.onnx_model(predictor.model, predictor.encoder, opset)
    onnx.checker.check_model(built, full_check=True)
    return built
