"""Shell completion through Typer's own mechanism: commands, devices, and ``--set`` values from
the registries (layer types, activations, losses, optimizers); ``nncli --help`` stays light."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from helpers import invoke

from nncli.cli.usage import complete_device, complete_set
from nncli.engine.registry import LAYERS, LOSSES, OPTIMIZERS


def complete(words: str) -> list[str]:
    """What bash would offer for the last word of ``words`` (Typer's complete_bash protocol)."""
    env = {**os.environ, "_NNCLI_COMPLETE": "complete_bash", "COMP_WORDS": words}
    env["COMP_CWORD"] = str(len(words.split()) - (0 if words.endswith(" ") else 1))
    code = "import sys; from nncli.cli import app; sys.argv = ['nncli']; app(prog_name='nncli')"
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    return done.stdout.split()


def test_help_offers_install_and_show_completion():
    result = invoke("--help")
    assert "--install-completion" in result.stdout and "--show-completion" in result.stdout


def test_the_shell_completes_commands_devices_and_set_values():
    assert complete("nncli grad") == ["gradcheck"]
    assert complete("nncli predict m.h5 x.csv --device g") == ["gpu", "gpu:0"]
    assert complete("nncli gradcheck s.yaml --device c") == ["cpu", "cuda:0"]
    assert complete("nncli train s.yaml --set optimizer.type=ad") == [
        "optimizer.type=adagrad",
        "optimizer.type=adam",
        "optimizer.type=adamw",
    ]


@pytest.mark.parametrize(
    ("key", "registry"),
    [("model.layers[3].type", LAYERS), ("loss", LOSSES), ("optimizer.type", OPTIMIZERS)],
)
def test_set_values_come_from_the_registries(key, registry):
    assert complete_set(f"{key}=") == [f"{key}={name}" for name in registry.names()]


def test_set_keys_and_devices():
    assert complete_set("model.layers[0].a") == ["model.layers[0].activation="]
    assert complete_set("dtype=f") == ["dtype=float32", "dtype=float64"]
    assert complete_set("unknown.key=x") == []
    assert complete_device("") == ["cpu", "gpu", "auto", "gpu:0", "cuda:0"]


def test_help_imports_no_heavy_library():
    code = (
        "import sys; from typer.testing import CliRunner; from nncli.cli import app; "
        "CliRunner().invoke(app, ['--help']); "
        "print(sorted(m for m in ('numpy', 'pandas', 'h5py', 'yaml') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.stdout.strip() == "[]", done.stdout + done.stderr
