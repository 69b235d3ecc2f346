"""The layers are real: the domain loads only the standard library, and a wrong import fails CI."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOMAIN_MODULES = sorted(p.stem for p in (ROOT / "skalds" / "domain").glob("*.py") if p.stem != "__init__")


def test_importing_the_whole_domain_loads_no_third_party_module() -> None:
    imports = "; ".join(f"import skalds.domain.{m}" for m in DOMAIN_MODULES)
    probe = (
        "import sys; before = set(sys.modules); "
        f"{imports}; "
        "first = {name.split('.')[0] for name in set(sys.modules) - before}; "
        "print(sorted(first - set(sys.stdlib_module_names) - {'skalds'}))"
    )
    out = subprocess.run(
        [sys.executable, "-I", "-c", probe], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert out.stdout.strip() == "[]", f"the domain pulled in third-party modules: {out.stdout}"


@pytest.mark.parametrize(
    ("module", "bad_import", "contract"),
    [
        ("domain/task.py", "import pydantic", "Core imports no I/O or framework libraries"),
        ("domain/task.py", "import skalds.application", "Hexagonal layers"),
        (
            "entrypoints/cli.py",
            "import skalds.adapters.system",
            "Entrypoints reach adapters only through bootstrap",
        ),
        ("adapters/redis/__init__.py", "import skalds.adapters.mongo", "Adapter families are independent"),
    ],
)
def test_a_deliberately_wrong_import_breaks_the_contracts(
    tmp_path: Path, module: str, bad_import: str, contract: str
) -> None:
    shutil.copytree(ROOT / "skalds", tmp_path / "skalds", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    target = tmp_path / "skalds" / module
    target.write_text(f"{bad_import}  # noqa\n" + target.read_text())
    lint_imports = Path(sys.executable).with_name("lint-imports")
    run = subprocess.run(
        [str(lint_imports), "--no-cache"],
        check=False,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"},
    )
    assert run.returncode != 0, run.stdout
    assert f"{contract}" in run.stdout and "BROKEN" in run.stdout, run.stdout
