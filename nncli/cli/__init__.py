"""The command line: each command parses, calls one library function and renders; the app
(``cli/app.py``) gives every command ``--debug``, SIGTERM as Ctrl-C, and maps an ``NncliError``
to its exit code with one line on stderr (a traceback only with ``--debug``). ``usage.py`` words
usage errors and holds the exit-code map, ``report.py`` draws what the user sees.

One module per group of commands, all registering on the one ``app`` of ``cli/app.py``:
``training.py`` (train), ``applying.py`` (predict, generate, evaluate), ``checking.py`` (inspect,
validate, gradcheck, export), ``plotting.py`` (plot), ``starting.py`` (init), ``serving.py``
(serve), ``finetuning.py`` (import, lr-find). Heavy modules (numpy, pandas, h5py) are imported
inside the commands so ``nncli --help`` is fast.
"""

from __future__ import annotations

from nncli.cli import (  # noqa: F401  (each module registers its commands)
    applying,
    checking,
    finetuning,
    plotting,
    searching,
    serving,
    starting,
    training,
)
from nncli.cli.app import app
from nncli.cli.usage import run

__all__ = ["app", "run"]
