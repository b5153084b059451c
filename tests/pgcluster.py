"""Throwaway PostgreSQL clusters for the tests and benchmarks: Debian's packages, no Docker.

``Cluster.start(folder)`` runs ``initdb`` and ``pg_ctl`` on a free loopback port with trust
authentication for the local user ``gridmap``; the cluster lives in ``folder`` and is stopped by
``stop()``. As root (CI), the server runs as the ``postgres`` system user that Debian's package made.
Every test database is a copy of a template database that already holds PostGIS and the store's
schema, so a new empty store costs one ``CREATE DATABASE`` (tens of milliseconds).
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

import psycopg

USER = "gridmap"
TEMPLATE = "gridmap_template"
START_TIMEOUT_S = 60


def bin_dir() -> Path | None:
    """The newest Debian PostgreSQL with PostGIS installed, or None."""
    for folder in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2]), reverse=True):
        version = folder.split("/")[-2]
        if glob.glob(f"/usr/share/postgresql/{version}/extension/postgis.control"):
            return Path(folder)
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _run(command: list[str]) -> None:
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"{' '.join(command)} failed ({done.returncode}): {done.stderr.strip() or done.stdout.strip()}")


def new_folder() -> Path:
    """A folder the server user can reach (pytest's own temp folders are private to root)."""
    return Path(tempfile.mkdtemp(prefix="gridmap-pg-"))


def _as_server_user(command: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


@dataclass
class Cluster:
    folder: Path
    port: int
    bin: Path

    @property
    def data(self) -> Path:
        return self.folder / "data"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{USER}@127.0.0.1:{self.port}/{database}"

    @classmethod
    def init(cls, folder: Path, *, port: int | None = None) -> Cluster:
        found = bin_dir()
        if found is None:
            raise RuntimeError("PostgreSQL with PostGIS is not installed (apt-get install postgresql-15-postgis-3)")
        folder.mkdir(parents=True, exist_ok=True)
        cluster = cls(folder, port or free_port(), found)
        if os.geteuid() == 0:
            shutil.chown(folder, "postgres", "postgres")
        _run(_as_server_user([str(found / "initdb"), "-D", str(cluster.data), "-U", USER, "-A", "trust",
                              "-E", "UTF8", "--locale=C.UTF-8", "--no-sync"]))
        return cluster

    @classmethod
    def start_new(cls, folder: Path, **settings: str) -> Cluster:
        cluster = cls.init(folder)
        cluster.configure(**settings)
        cluster.start()
        return cluster

    def configure(self, **settings: str) -> None:
        """Lines appended to postgresql.conf (e.g. ``wal_level="replica"``)."""
        defaults = {"listen_addresses": "'127.0.0.1'", "port": str(self.port),
                    "unix_socket_directories": f"'{self.folder}'", "max_connections": "200",
                    "fsync": "on", "shared_buffers": "'128MB'"}
        lines = [f"{k} = {v}" for k, v in {**defaults, **settings}.items()]
        with (self.data / "postgresql.conf").open("a") as f:
            f.write("\n".join(lines) + "\n")

    def start(self) -> None:
        _run(_as_server_user([str(self.bin / "pg_ctl"), "-D", str(self.data), "-l",
                              str(self.folder / "server.log"), "-w", "-t", str(START_TIMEOUT_S), "start"]))

    def stop(self, mode: str = "fast") -> None:
        subprocess.run(_as_server_user([str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop"]),
                       check=False, capture_output=True)

    def make_template(self) -> None:
        """A database with PostGIS and the store's schema, copied for every test store."""
        from gridmap.store.postgis import PostgisStore

        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {TEMPLATE}")
        store = PostgisStore(self.url(TEMPLATE), secret="t" * 32, pool_max=1)
        store.migrate()
        store.close()

    def new_database(self) -> str:
        """A fresh store's URL: a copy of the template."""
        name = f"t_{uuid.uuid4().hex[:16]}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE}")
        return self.url(name)

    def copy_database(self, source: str) -> str:
        """A new database copied from ``source`` (PostgreSQL copies only a database nobody is connected
        to: other sessions on it are ended first; their pools reconnect)."""
        name = f"t_{uuid.uuid4().hex[:16]}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s "
                         "AND pid <> pg_backend_pid()", (source,))
            conn.execute(f'CREATE DATABASE {name} TEMPLATE "{source}"')
        return self.url(name)

    def replica(self, folder: Path) -> Cluster:
        """A streaming replica of this cluster (``pg_basebackup -R``), started, read-only."""
        folder.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(folder, "postgres", "postgres")
        standby = Cluster(folder, free_port(), self.bin)
        _run(_as_server_user([str(self.bin / "pg_basebackup"), "-h", "127.0.0.1", "-p", str(self.port), "-U", USER,
                              "-D", str(standby.data), "-R", "-X", "stream", "-c", "fast", "--no-sync"]))
        standby.configure(hot_standby="on")
        standby.start()
        return standby
