"""Every ```python block of the package READMEs runs, in order, sharing one namespace per file.

Top-level ``await`` is allowed (blocks are compiled with PyCF_ALLOW_TOP_LEVEL_AWAIT), so the docs
read like a notebook. A block whose first line is ``# requires: NAME`` needs a real API key or
server: it is compiled, not run.
"""

from __future__ import annotations

import ast
import contextlib
import io
import re
import sys
import types
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
READMES = sorted(p for p in [ROOT / "README.md", *ROOT.glob("packages/*/README.md")] if p.exists())
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def blocks(path: Path) -> list[tuple[int, str]]:
    text = path.read_text(encoding="utf-8")
    return [(text[: m.start()].count("\n") + 2, m.group(1)) for m in BLOCK.finditer(text)]


@pytest.mark.parametrize("readme", READMES, ids=lambda p: str(p.relative_to(ROOT)))
async def test_readme_python_blocks_run(readme: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    # A real module, so dataclasses and typing can resolve the blocks' classes through sys.modules.
    module = types.ModuleType(f"readme_{readme.parent.name.replace('-', '_')}")
    monkeypatch.setitem(sys.modules, module.__name__, module)
    namespace = module.__dict__
    for line, source in blocks(readme):
        name = f"{readme.relative_to(ROOT)}:{line}"
        code = compile(source, name, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
        if source.lstrip().startswith("# requires:"):
            continue
        out = io.StringIO()
        try:
            with contextlib.redirect_stdout(out):
                result = eval(code, namespace)
                if result is not None:
                    await result
        except Exception as exc:
            detail = f"{type(exc).__name__}: {exc}"
            pytest.fail(f"README block at {name} failed: {detail}\n--- output ---\n{out.getvalue()}")


def test_readmes_found() -> None:
    assert ROOT / "packages" / "llm-client" / "README.md" in READMES
    assert blocks(ROOT / "packages" / "llm-client" / "README.md")
