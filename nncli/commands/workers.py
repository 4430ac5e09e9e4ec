"""Worker processes of ``nncli tune --workers`` and ``nncli cv --workers``: each is the same
command line run again (``python -m nncli ...``); the parent waits for them and reports the
first failure with the worker's own exit code (the worker printed its error)."""

from __future__ import annotations

import subprocess
import time

from nncli.errors import Interrupted, NncliError

POLL = 0.05  # seconds between looks at the running workers


def wait_any(running: dict[int, subprocess.Popen]) -> tuple[int, int]:
    """The first of ``running`` to end (removed from it) and its exit status."""
    while True:
        for key, process in list(running.items()):
            code = process.poll()
            if code is not None:
                del running[key]
                return key, code
        time.sleep(POLL)


def failed(command: str, which: str, code: int) -> NncliError:
    """The error a parent raises for a worker that exited with ``code``."""
    if code in (130, 143):
        return Interrupted(f"{command} interrupted ({which} stopped)", exit_code=code)
    exc = NncliError(f"{command}: {which} failed (exit {code}); its error is above")
    exc.exit_code = code if 0 < code < 128 else 1
    return exc


def wait_all(running: dict[int, subprocess.Popen], command: str) -> None:
    """Wait for every worker of ``running``; the first that fails raises ``failed`` (after the
    others have ended: none is left behind)."""
    try:
        while running:
            number, code = wait_any(running)
            if code != 0:
                raise failed(command, f"worker {number}", code)
    finally:
        for process in running.values():
            process.wait()
