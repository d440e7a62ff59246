"""The house limits (issue 17): no module over 500 lines, no function over complexity 20.

Cyclomatic complexity is counted as ``radon cc`` counts it (functions and methods). The test
command's lint step runs this. It reports the offenders; with ``--strict`` it also fails
when there are any. The whole tree meets the limits, so the test command passes --strict.

    python scripts/limits.py [--strict] [folder ...]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from radon.complexity import cc_visit
from radon.visitors import Class, Function

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("kiosk", "onsite_server", "shared", "central_emulator")
MAX_LINES = 500
MAX_COMPLEXITY = 20


def _functions(blocks: list[Function | Class]) -> list[Function]:
    out: list[Function] = []
    for block in blocks:
        if isinstance(block, Class):
            out.extend(block.methods)
        else:
            out.append(block)
    return out


def offenders(folders: list[Path]) -> list[str]:
    """Return one line per module or function beyond the limits, largest first."""
    long_modules: list[tuple[int, str]] = []
    complex_functions: list[tuple[int, str]] = []
    for folder in folders:
        for path in sorted(folder.rglob("*.py")):
            text = path.read_text(encoding="utf-8")
            where = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
            lines = len(text.splitlines())
            if lines > MAX_LINES:
                long_modules.append((lines, f"{where}: {lines} lines (limit {MAX_LINES})"))
            for fn in _functions(cc_visit(text)):
                if fn.complexity > MAX_COMPLEXITY:
                    name = f"{fn.classname}.{fn.name}" if fn.classname else fn.name
                    complex_functions.append((fn.complexity, (
                        f"{where}:{fn.lineno} {name}: complexity {fn.complexity} "
                        f"(limit {MAX_COMPLEXITY})")))
    return [line for _, line in sorted(long_modules, reverse=True)] + \
        [line for _, line in sorted(complex_functions, reverse=True)]


def main(argv: list[str] | None = None) -> int:
    """Print the offenders; return 1 with --strict when there are any."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--strict", action="store_true", help="fail when a limit is exceeded")
    parser.add_argument("folders", nargs="*", help="folders to scan (default: the packages)")
    args = parser.parse_args(argv)
    folders = [ROOT / f for f in (args.folders or PACKAGES)]  # an absolute one stays as is
    found = offenders(folders)
    for line in found:
        print(f"limits: {line}", file=sys.stderr)
    if found:
        print(f"limits: {len(found)} beyond the limits"
              + ("" if args.strict else " (report only)"), file=sys.stderr)
    return 1 if found and args.strict else 0


if __name__ == "__main__":
    sys.exit(main())
