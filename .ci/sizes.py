"""List the modules over 400 lines and the classes over 200 lines under leadrelay/.

Follows the symlinks (leadrelay/worker, adapters, migrations), so the whole
installed tree is read. Data tables and migrations are exempt. Exits 1 when
anything is listed: ``python .ci/sizes.py``.
"""

from __future__ import annotations

import ast
import os
import sys
from pathlib import Path

MODULE_LINES = 400
CLASS_LINES = 200
EXEMPT = ("leadrelay/adapters/parsing/synonyms.py", "leadrelay/migrations/")  # a data table; migrations


def sources(root: Path) -> list[Path]:
    found: list[Path] = []
    for folder, dirs, files in os.walk(root, followlinks=True):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        found += (Path(folder) / name for name in sorted(files) if name.endswith(".py"))
    return found


def oversized(path: Path) -> list[str]:
    text = path.read_text("utf-8")
    lines = len(text.splitlines())
    found = [f"{path}: module of {lines} lines"] if lines > MODULE_LINES else []
    for node in ast.walk(ast.parse(text, str(path))):
        if isinstance(node, ast.ClassDef):
            size = (node.end_lineno or node.lineno) - node.lineno + 1
            if size > CLASS_LINES:
                found.append(f"{path}:{node.lineno}: class {node.name} of {size} lines")
    return found


def main() -> int:
    root = Path(__file__).resolve().parent.parent
    os.chdir(root)
    found = [
        problem
        for path in sources(Path("leadrelay"))
        if not str(path).startswith(EXEMPT)
        for problem in oversized(path)
    ]
    print("\n".join(found) or f"no module over {MODULE_LINES} lines, no class over {CLASS_LINES}")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
