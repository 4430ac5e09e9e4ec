"""``nncli serve``: a checkpoint answering HTTP requests. The only room that imports FastAPI,
uvicorn, prometheus-client and python-multipart (the ``serve`` extra).

``settings.py`` (the command's options as one value, importable without the extra),
``schema.py`` (the request schema built from the model's columns, and every refusal as a
``Problem``), ``batching.py`` (concurrent requests joined into fixed-size forward passes),
``metrics.py`` (``/metrics``), ``uploads.py`` (image files in a multipart form), ``app.py``
(the FastAPI app: routes, limits, error handlers), ``server.py`` (listening, uvicorn, the
graceful stop). The model side, what a request's rows, images or prompt become and what the
answer holds, is ``nncli.commands.serve``: this room knows a model only by
the methods ``app.Model`` names. ``require`` is the check the command makes first, so a
missing extra is one line and exit 2, not a traceback.
"""

from __future__ import annotations

from nncli.errors import SpecError

INSTALL_HINT = 'pip install -e ".[serve]"'
LIBRARIES = ("fastapi", "uvicorn", "prometheus_client", "python_multipart")


def require() -> None:
    """SpecError (exit 2) naming the install command when a library of the extra is missing."""
    import importlib.util

    missing = [name for name in LIBRARIES if importlib.util.find_spec(name) is None]
    if missing:
        verb = "is" if len(missing) == 1 else "are"
        raise SpecError(
            f"nncli serve needs {', '.join(missing)}, which {verb} not installed: {INSTALL_HINT}"
        )
