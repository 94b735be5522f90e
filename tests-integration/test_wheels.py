"""Each package's wheel installs on its own, with only its declared dependencies, and imports.

The five wheels are built once per session (``uv build --package NAME --wheel``). Each test then makes
a fresh venv and installs ONE wheel into it; the workspace's other wheels are offered through
``--find-links`` (and pinned to those local files, so a same-named project on PyPI can never be picked).
llm-client and agent-runtime-core must install with zero third-party packages (``--no-index``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

ROOT = Path(__file__).resolve().parents[1]
SDK_MODULES = ("openai", "anthropic", "litellm", "httpx", "pydantic")


@dataclass(frozen=True)
class Pkg:
    name: str  # distribution name
    module: str  # import name
    zero_third_party: bool  # must install with nothing but our own packages


PACKAGES = {
    p.name: p
    for p in (
        Pkg("llm-client", "llm_client", True),
        Pkg("agent-runtime-core", "agent_runtime_core", True),
        Pkg("agent-runtime", "agent_runtime", False),
        Pkg("agent-runtime-framework", "agent_runtime_framework", False),
        Pkg("django-agent-runtime", "django_agent_runtime", False),
    )
}
OUR_DISTRIBUTIONS = set(PACKAGES)

# What each wheel pulls in of ours (its declared dependencies, transitively).
OUR_CLOSURE = {
    "llm-client": {"llm-client"},
    "agent-runtime-core": {"llm-client", "agent-runtime-core"},
    "agent-runtime": {"llm-client", "agent-runtime-core", "agent-runtime"},
    "agent-runtime-framework": {"llm-client", "agent-runtime-core", "agent-runtime-framework"},
    "django-agent-runtime": {"llm-client", "agent-runtime-core", "agent-runtime", "django-agent-runtime"},
}

# The public names each package must export, beyond __version__.
PUBLIC_NAMES = {
    "llm-client": ("Agent", "ExecutionEngine", "MockProvider", "OpenAIProvider"),
}


def _uv() -> str:
    uv = os.environ.get("UV") or shutil.which("uv")
    if not uv:
        pytest.fail("uv is not installed: run `make install` (it installs uv with pip when missing)")
    return uv


def _run(*args: str | Path, cwd: Path = ROOT) -> str:
    env = {k: v for k, v in os.environ.items() if k not in {"VIRTUAL_ENV", "UV_PROJECT_ENVIRONMENT"}}
    proc = subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    if proc.returncode != 0:
        pytest.fail(
            f"command failed ({proc.returncode}): {' '.join(map(str, args))}\n{proc.stdout}\n{proc.stderr}"
        )
    return proc.stdout


def _dist_name(wheel: Path) -> str:
    return wheel.name.split("-")[0].replace("_", "-")


@pytest.fixture(scope="session")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Build the five wheels once per session; returns distribution name -> wheel path."""
    out = tmp_path_factory.mktemp("wheels")
    uv = _uv()
    for name in PACKAGES:
        _run(uv, "build", "--package", name, "--wheel", "-o", out, "--quiet")
    built = {_dist_name(w): w for w in out.glob("*.whl")}
    assert set(built) == OUR_DISTRIBUTIONS, sorted(built)
    return built


@pytest.mark.parametrize("name", list(PACKAGES))
def test_wheel_ships_typing_marker_and_data(wheels: dict[str, Path], name: str) -> None:
    pkg = PACKAGES[name]
    with zipfile.ZipFile(wheels[name]) as wheel:
        files = set(wheel.namelist())
    assert f"{pkg.module}/py.typed" in files
    assert f"{pkg.module}/__init__.py" in files
    if name == "llm-client":
        assert "llm_client/pricing.json" in files
    # Only the package itself: no tests, no stray top-level modules.
    top_level = {f.split("/")[0] for f in files if not f.split("/")[0].endswith(".dist-info")}
    assert top_level == {pkg.module}


def _import_check_script(pkg: Pkg) -> str:
    names = PUBLIC_NAMES.get(pkg.name, ())
    return textwrap.dedent(
        f"""
        import json, sys
        import {pkg.module}
        report = {{
            "version": {pkg.module}.__version__,
            "sdks_after_import": sorted(m for m in {SDK_MODULES!r} if m in sys.modules),
            "missing_names": [],
            "file": {pkg.module}.__file__,
        }}
        for attr in {names!r}:
            try:
                exec("from {pkg.module} import " + attr)
            except Exception as exc:
                report["missing_names"].append(f"{{attr}}: {{type(exc).__name__}}: {{exc}}")
        print(json.dumps(report))
        """
    )


@pytest.mark.parametrize("name", list(PACKAGES))
def test_wheel_installs_alone_and_imports(wheels: dict[str, Path], tmp_path: Path, name: str) -> None:
    pkg = PACKAGES[name]
    uv = _uv()
    venv = tmp_path / "venv"
    _run(uv, "venv", "--quiet", "--python", sys.executable, venv)
    python = venv / "bin" / "python"
    wheel_dir = wheels[name].parent

    # Our own distributions resolve only to the wheels just built, never to a same-named PyPI project.
    constraints = tmp_path / "constraints.txt"
    constraints.write_text("".join(f"{n} @ {w.as_uri()}\n" for n, w in wheels.items() if n != name))
    install: list[str | Path] = [
        uv,
        "pip",
        "install",
        "--quiet",
        "--python",
        python,
        wheels[name],
        "--find-links",
        wheel_dir,
    ]
    install += ["--constraint", constraints]
    if pkg.zero_third_party:
        install.append("--no-index")  # nothing may come from PyPI
    _run(*install)

    listed = json.loads(_run(uv, "pip", "list", "--python", python, "--format", "json"))
    installed = {entry["name"].lower() for entry in listed}
    assert OUR_CLOSURE[name] <= installed
    if pkg.zero_third_party:
        assert installed == OUR_CLOSURE[name], (
            f"third-party packages installed: {installed - OUR_DISTRIBUTIONS}"
        )
    else:
        assert installed & OUR_DISTRIBUTIONS == OUR_CLOSURE[name]

    report = json.loads(_run(python, "-c", _import_check_script(pkg), cwd=tmp_path))
    assert report["file"].startswith(str(venv)), report["file"]  # the installed wheel, not the workspace
    assert report["version"] == wheels[name].name.split("-")[1]
    assert report["sdks_after_import"] == [], f"`import {pkg.module}` imported {report['sdks_after_import']}"
    assert report["missing_names"] == [], report["missing_names"]
