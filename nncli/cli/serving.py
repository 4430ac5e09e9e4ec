"""Answering requests: `serve` (a checkpoint over HTTP, through the `serve` extra)."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from nncli.cli.app import DEVICE, app
from nncli.cli.applying import UNKNOWN
from nncli.cli.usage import COUNT, NON_NEGATIVE, POSITIVE_INT


@app.command()
def serve(
    checkpoint: Path = typer.Argument(
        ..., help="A checkpoint (nncli train): a model of rows, images or text."
    ),
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
        10_000,
        "--max-rows",
        parser=POSITIVE_INT,
        help="Most rows (or image files) one request may hold.",
    ),
    max_length: int = typer.Option(
        1_000, "--max-length", parser=COUNT, help="Most symbols one POST /generate may ask for."
    ),
    threads: int | None = typer.Option(
        None,
        "--threads",
        parser=POSITIVE_INT,
        help="BLAS threads of each process (default 1, or OPENBLAS_NUM_THREADS / "
        "OMP_NUM_THREADS when set): one thread computes while another reads requests.",
    ),
    device: str = DEVICE,
    unknown: str = UNKNOWN,
) -> None:
    """Answer HTTP requests with the checkpoint's predictions: POST /predict (JSON rows or a
    CSV table; image files as a multipart upload), POST /generate (a text model's prompt),
    GET /health, /info, /metrics, and the OpenAPI page at /docs. Stops on Ctrl-C or SIGTERM
    after answering the requests in flight."""
    blas_threads(threads)
    from nncli.commands import serve as serve_command
    from nncli.serve.settings import Settings

    settings = Settings(
        host=host, port=port, workers=workers, max_batch=max_batch, max_wait_ms=max_wait_ms,
        max_body_mb=max_body_mb, max_rows=max_rows, max_length=max_length, device=device,
        unknown=unknown,
    )  # fmt: skip

    def ready(url: str) -> None:
        typer.echo(f"serving {checkpoint} on {url} (Ctrl-C to stop)", err=True)

    serve_command.serve(checkpoint, settings, ready=ready)
    typer.echo("stopped", err=True)


BLAS_THREADS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def blas_threads(threads: int | None) -> None:
    """The BLAS threads of this process and its workers, set before numpy loads (a command's
    imports come after the command line's, which load no numpy). A server's passes are small:
    a BLAS spreading each over every core spins against the thread reading requests (and
    other processes) and is many times slower than one thread."""
    if threads is not None:
        os.environ.update({name: str(threads) for name in BLAS_THREADS})
    elif not any(name in os.environ for name in BLAS_THREADS):
        os.environ.update({name: "1" for name in BLAS_THREADS})
