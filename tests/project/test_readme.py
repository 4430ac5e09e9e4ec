"""What README.md and the docs tell a new user, held to the code they describe: install hints in
one form naming real extras, where outputs land, and what ``--workers`` promises (issue 23; the
texts moved from the README into docs/ in issue 25)."""

from __future__ import annotations

import re

from helpers import ROOT, invoke

PAGES = [ROOT / "README.md", ROOT / "CONTRIBUTING.md", *sorted((ROOT / "docs").rglob("*.md"))]
DOCS = {p.relative_to(ROOT).as_posix(): p.read_text(encoding="utf-8") for p in PAGES}


def flat(text: str) -> str:
    """Table rows and wrapped lines as one line of words."""
    return " ".join(text.split())


FLAT = flat("\n".join(DOCS.values()))
HINT = re.compile(r'pip install -e (?:\.|"\.\[(?P<extras>[a-z,]+)\]")(?![\w.\[])')


def extras() -> set[str]:
    """The extras pyproject.toml declares (no tomllib before Python 3.11)."""
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    section = text.split("[project.optional-dependencies]")[1].split("\n[")[0]
    return set(re.findall(r"^([a-z]+) = \[", section, flags=re.M))


def check_hints(text: str, where: str) -> int:
    """Every ``pip install`` in ``text`` is ``pip install -e ".[extra]"`` (or ``-e .``) with
    extras pyproject declares -> how many there are."""
    found = 0
    for start in (m.start() for m in re.finditer("pip install", text)):
        hint = HINT.match(text, start)
        assert hint is not None, f"{where}: {text[start : start + 40]!r}"
        named = set((hint["extras"] or "").split(",")) - {""}
        assert named <= extras(), (where, named)
        found += 1
    return found


def test_install_hints_take_one_form_in_the_readme_and_in_nncli_messages():
    assert sum(check_hints(flat(text), page) for page, text in DOCS.items()) >= 10
    assert check_hints(flat(DOCS["README.md"]), "README.md") >= 2  # the two set-up commands
    messages = 0
    for path in sorted((ROOT / "nncli").rglob("*.py")):
        messages += check_hints(path.read_text(encoding="utf-8"), str(path.relative_to(ROOT)))
    assert messages >= 5  # gpu, mpi, plot, tune, onnx


def test_the_readme_says_cv_needs_no_extra_and_tune_needs_tune():
    guide = flat(DOCS["docs/guides/choosing-hyperparameters.md"])
    assert "`cv` needs no extra" in guide
    assert "Both need" not in FLAT
    assert '`tune` needs `pip install -e ".[tune]"`' in guide


def test_where_paths_point_is_stated_once_and_the_reference_shows_the_default():
    assert FLAT.count("**Where paths point**") == 1
    spec_page = DOCS["docs/spec.md"]
    rule = flat(spec_page.split("**Where paths point**")[1].split("\n## ")[0])
    for needle in ("relative to the spec's folder", "relative to the current folder", "`--output`"):
        assert needle in rule, needle
    reference = spec_page.split("## A whole spec")[1].split("```")[1]  # the commented spec
    assert re.search(
        r"^output: null +# default runs/<name>/model.h5 under the current folder", reference, re.M
    )
    assert "output: runs/" not in reference  # written there, it would land beside the spec


def test_workers_says_what_equals_the_single_process_run():
    train = DOCS["docs/commands/train.md"]
    row = next(line for line in train.splitlines() if line.startswith("| `--workers K` |"))
    for needle in ("in float64 the same weights", "in float32", "early stopping may restore"):
        assert needle in row, needle
    assert "**The result is the single-process result.**" not in FLAT
    help_text = " ".join(invoke("train", "--help").stdout.split())
    assert "float32: within rounding, so early stopping may pick another epoch" in help_text
