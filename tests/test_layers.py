"""The layers of photoshare/ as pyproject.toml's import-linter contracts write them down (also run by `make test`):
the tree keeps them, and the contracts do catch an import that points up or a range rule that reaches Flask."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def lint_imports(cwd: Path) -> subprocess.CompletedProcess[str]:
    """`lint-imports` on the photoshare/ package and pyproject.toml found in `cwd` (its cache off: a fresh look)."""
    return subprocess.run([str(LINT_IMPORTS), "--no-cache"], cwd=cwd, capture_output=True, text=True, timeout=120,
                          check=False)


def copy_of_tree(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "photoshare", tmp_path / "photoshare", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def test_photoshare_keeps_every_import_contract():
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    "module, line, broken",
    [
        # a lower layer reaching up: the bytes' layer asking a view
        ("delivery/sendfile.py", "from ..share import api_bp", "Layers only point down"),
        # the range rules must stay usable without an app
        ("delivery/ranges.py", "import flask", "never import Flask"),
        # a view choosing a strategy itself instead of calling the seam
        ("share/api.py", "from ..delivery import accel", "never a strategy"),
        # two modules of one package importing each other
        ("names.py", "from . import archive", "No import cycles"),
    ],
)
def test_contracts_catch_an_import_that_breaks_the_layers(tmp_path: Path, module: str, line: str, broken: str):
    tree = copy_of_tree(tmp_path)
    path = tree / "photoshare" / module
    path.write_text(path.read_text() + f"\n{line}  # noqa\n")
    result = lint_imports(tree)
    assert result.returncode != 0, result.stdout
    broken_lines = [text for text in result.stdout.splitlines() if " BROKEN" in text]
    assert any(broken in text for text in broken_lines), result.stdout
