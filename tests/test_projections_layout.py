"""projections/ shows its parts: the runtime knows no read model, and each read model is one
module holding its fold and its queries (issue 14)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROJECTIONS = ROOT / "projections"


def _imported(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    found |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    return found


def test_the_runtime_imports_no_read_model():
    found = {
        f"{path.relative_to(ROOT)}: {module}"
        for path in sorted((PROJECTIONS / "runtime").glob("*.py"))
        for module in _imported(path)
        if module.startswith("projections.") and not module.startswith("projections.runtime")
    }

    assert found == set()


def test_a_read_model_has_no_separate_reading_module():
    assert sorted(p.name for p in PROJECTIONS.glob("read_*.py")) == []
    assert not (PROJECTIONS / "queries.py").exists()
