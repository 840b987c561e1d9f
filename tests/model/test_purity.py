"""The model is pure: no I/O modules, no Prefect, no cloud SDKs, directly or through what it imports."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import peerprobe.model

SDKS = {"prefect", "boto3", "botocore", "kubernetes", "moto"}
FORBIDDEN = SDKS | {"socket", "subprocess", "requests", "httpx", "urllib", "shutil"}
MODEL_DIR = Path(peerprobe.model.__file__).parent


def imported_roots(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_model_modules_import_nothing_forbidden() -> None:
    offenders = {p.name: imported_roots(p) & FORBIDDEN for p in MODEL_DIR.glob("*.py")}
    assert not {name: bad for name, bad in offenders.items() if bad}


def test_importing_the_model_loads_no_sdk() -> None:
    code = (
        "import sys, peerprobe.model; "
        f"bad = sorted(m for m in {sorted(SDKS)!r} if m in sys.modules); print(','.join(bad))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""
