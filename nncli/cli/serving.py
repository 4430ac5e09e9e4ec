"""Answering requests: `serve` (a checkpoint over HTTP, through the `serve` extra)."""

from __future__ import annotations

from pathlib import Path

import typer

from nncli.cli.app import DEVICE, app
from nncli.cli.applying import UNKNOWN
from nncli.cli.usage import COUNT, NON_NEGATIVE, POSITIVE_INT


@app.command()
def serve(
    checkpoint: Path = typer.Argument(..., help="A checkpoint of a table model (nncli train)."),
    host: str = typer.Option(
        "127.0.0.1", "--host", help="Address to listen on (0.0.0.0: every interface)."
    ),
    port: int = typer.Option(8000, "--port", parser=COUNT, help="Port (0: any free one)."),
    workers: int = typer.Option(
        1, "--workers", parser=POSITIVE_INT, help="Processes, each with its own copy of the model."
    ),
    max_batch: int = typer.Option(
        64,
        "--max-batch",
        parser=POSITIVE_INT,
        help="Rows of every forward pass: concurrent requests share one.",
    ),
    max_wait_ms: float = typer.Option(
        2.0,
        "--max-wait-ms",
        parser=NON_NEGATIVE,
        help="Milliseconds a request waits for others to share its forward pass.",
    ),
    max_body_mb: float = typer.Option(
        10.0, "--max-body-mb", parser=NON_NEGATIVE, help="Largest request body (413 above)."
    ),
    max_rows: int = typer.Option(
        10_000, "--max-rows", parser=POSITIVE_INT, help="Most rows one request may hold."
    ),
    device: str = DEVICE,
    unknown: str = UNKNOWN,
) -> None:
    """Answer HTTP requests with the checkpoint's predictions: POST /predict (JSON rows or a
    CSV table), GET /health, /info, /metrics, and the OpenAPI page at /docs. Stops on Ctrl-C or
    SIGTERM after answering the requests in flight."""
    from nncli.commands import serve as serve_command
    from nncli.serve.settings import Settings

    settings = Settings(
        host=host, port=port, workers=workers, max_batch=max_batch, max_wait_ms=max_wait_ms,
        max_body_mb=max_body_mb, max_rows=max_rows, device=device, unknown=unknown,
    )  # fmt: skip

    def ready(url: str) -> None:
        typer.echo(f"serving {checkpoint} on {url} (Ctrl-C to stop)", err=True)

    serve_command.serve(checkpoint, settings, ready=ready)
    typer.echo("stopped", err=True)
