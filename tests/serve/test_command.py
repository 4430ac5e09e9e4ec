"""``nncli serve`` on the command line before it listens: the missing extra, a bad checkpoint
and bad options are each one line and their exit code."""

from __future__ import annotations

import importlib.util
import os

import pytest
from helpers import invoke, one_error_line


def test_without_the_extra_it_names_the_install_command(monkeypatch, models):
    real = importlib.util.find_spec

    def without_fastapi(name, *args):
        return None if name == "fastapi" else real(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", without_fastapi)
    result = invoke("serve", models["iris"][0])
    one_error_line(
        result, 2, "nncli serve needs fastapi, which is not", 'pip install -e ".[serve]"'
    )


def test_several_missing_libraries_are_named_together(monkeypatch):
    from nncli import serve
    from nncli.errors import SpecError

    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *args: None)
    named = "fastapi, uvicorn, prometheus_client, python_multipart, which are not"
    with pytest.raises(SpecError, match=named):
        serve.require()


def test_a_file_that_is_no_checkpoint_is_exit_4(tmp_path):
    bad = tmp_path / "model.h5"
    bad.write_bytes(b"not a checkpoint")
    one_error_line(invoke("serve", bad, "--port", "0"), 4, str(bad))


def test_options_out_of_range_are_exit_2(models):
    checkpoint = models["iris"][0]
    for options, needle in [
        (["--unknown", "skip"], "expected one of error, ignore"),
        (["--max-batch", "0"], "--max-batch"),
        (["--port", "70000"], "a port from 0 to 65535"),
        (["--max-body-mb", "0"], "--max-body-mb"),
        (["--max-length", "-1"], "--max-length"),
    ]:
        result = invoke("serve", checkpoint, *options)
        assert result.exit_code == 2, (options, result.stderr)
        assert needle in result.stderr, (options, result.stderr)


def test_each_server_process_computes_on_one_blas_thread_unless_told(monkeypatch):
    """Small passes on a BLAS spread over every core spin against the thread reading
    requests: the server's processes get one thread, unless --threads or the environment
    says otherwise (set before numpy loads in the command's process)."""
    from nncli.cli.serving import BLAS_THREADS, blas_threads

    for name in BLAS_THREADS:
        monkeypatch.delenv(name, raising=False)
    blas_threads(None)
    assert {name: os.environ[name] for name in BLAS_THREADS} == dict.fromkeys(BLAS_THREADS, "1")
    monkeypatch.setenv("OMP_NUM_THREADS", "4")
    monkeypatch.delenv("OPENBLAS_NUM_THREADS")
    blas_threads(None)
    assert "OPENBLAS_NUM_THREADS" not in os.environ  # the user's setting stands
    blas_threads(2)
    assert {os.environ[name] for name in BLAS_THREADS} == {"2"}
