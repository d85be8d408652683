"""Draw the import graph of the package's rooms (subpackages) for docs/architecture.md.

Run ``python docs/import_graph.py`` from the repository root; it prints the Mermaid
block that the architecture page holds, and ``--check`` fails when the page is stale.
The same module graph backs tests/test_architecture.py.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "mlabs_desktop"
PAGE = ROOT / "docs" / "architecture.md"
BEGIN, END = "<!-- import graph: begin -->", "<!-- import graph: end -->"


def module_files() -> dict[str, Path]:
    """Every module of the package by dotted name (a package by its own name)."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        if "__pycache__" in parts:
            continue
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def module_imports(modules: dict[str, Path]) -> dict[str, set[str]]:
    """Module -> the package's modules it imports, at any depth of the code (function-level imports too)."""
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and not node.level:
                for alias in node.names:
                    candidate = f"{node.module}.{alias.name}"
                    targets.add(candidate if candidate in modules else node.module)
            elif isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
        graph[name] = {t for t in targets if t in modules and t != name and modules[t].name != "__init__.py"}
    return graph


def room(module: str) -> str:
    """``mlabs_desktop.core.training.steps`` -> ``core.training``; cross-cutting modules belong to their layer."""
    parts = module.split(".")[1:]
    if len(parts) >= 3:
        return ".".join(parts[:2])
    return parts[0] if parts else "mlabs_desktop"


def room_graph() -> dict[str, set[str]]:
    rooms: dict[str, set[str]] = {}
    for module, targets in module_imports(module_files()).items():
        rooms.setdefault(room(module), set()).update(room(t) for t in targets if room(t) != room(module))
    return rooms


def mermaid() -> str:
    lines = ["```mermaid", "flowchart LR"]
    for source, targets in sorted(room_graph().items()):
        for target in sorted(targets):
            lines.append(f"    {source.replace('.', '_')}[{source}] --> {target.replace('.', '_')}[{target}]")
    lines.append("```")
    return "\n".join(lines)


def main() -> int:
    block = f"{BEGIN}\n{mermaid()}\n{END}"
    text = PAGE.read_text(encoding="utf-8")
    current = text[text.index(BEGIN):text.index(END) + len(END)]
    if "--check" in sys.argv:
        return 0 if current == block else 1
    if "--write" in sys.argv:
        PAGE.write_text(text.replace(current, block), encoding="utf-8")
    else:
        print(block)
    return 0


if __name__ == "__main__":
    sys.exit(main())
