"""A real PostgreSQL server for the tests (and the PostgreSQL-vs-SQLite measurement script).

`PgServer.start()` finds the machine's PostgreSQL binaries (`pg_ctl`/`initdb` on PATH or under
/usr/lib/postgresql/*/bin), runs `initdb` in a fresh temp dir and starts the server on a free
port of 127.0.0.1 (trust authentication, user `postgres`); `stop()` stops it and removes the
dir. PostgreSQL refuses to run as root, so as root every server command runs as the `postgres`
user (`runuser -u postgres --`), in a dir that user owns.

`await server.database()` creates a fresh database and returns its `postgresql+asyncpg` URL:
an empty one, or (`migrated=True`) a copy of a template migrated once to the head revision
(CREATE DATABASE ... TEMPLATE, a file copy: milliseconds).
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

PG_USER = "postgres"
TEMPLATE = "ccrouter_template"


class PgUnavailable(RuntimeError):
    """No PostgreSQL binaries on this machine (the message says where they were looked for)."""


def find_bindir() -> Path:
    """The directory holding pg_ctl and initdb: PATH first, then the newest Debian install."""
    on_path = shutil.which("pg_ctl")
    if on_path and shutil.which("initdb"):
        return Path(on_path).resolve().parent
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"),
        key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0,
    )
    for pg_ctl in reversed(candidates):
        if (Path(pg_ctl).parent / "initdb").exists():
            return Path(pg_ctl).parent
    raise PgUnavailable(
        "no PostgreSQL binaries (pg_ctl/initdb not on PATH nor under /usr/lib/postgresql/*/bin)"
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _as_server_user(cmd: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return cmd
    try:
        pwd.getpwnam(PG_USER)
    except KeyError:
        raise PgUnavailable(
            f"running as root and there is no {PG_USER!r} user to run PostgreSQL as"
        ) from None
    return ["runuser", "-u", PG_USER, "--", *cmd]


@dataclass
class PgServer:
    bindir: Path
    root: Path
    port: int
    _names: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _template_ready: bool = False

    @property
    def data(self) -> Path:
        return self.root / "data"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+asyncpg://{PG_USER}@127.0.0.1:{self.port}/{database}"

    def dsn(self, database: str = "postgres") -> str:
        """The plain libpq/asyncpg DSN."""
        return f"postgresql://{PG_USER}@127.0.0.1:{self.port}/{database}"

    @classmethod
    def start(cls, *, durable: bool = False) -> PgServer:
        """initdb + start. `durable=False` (tests) turns fsync off: a test database need not
        survive a power cut; `durable=True` keeps PostgreSQL's defaults (measurements)."""
        bindir = find_bindir()
        root = Path(tempfile.mkdtemp(prefix="ccrouter-pg-"))
        if os.geteuid() == 0:
            ent = pwd.getpwnam(PG_USER)
            os.chown(root, ent.pw_uid, ent.pw_gid)
        server = cls(bindir, root, _free_port())
        try:
            server._run([str(bindir / "initdb"), "-D", str(server.data), "-U", PG_USER,
                         "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync"])  # fmt: skip
            opts = [f"-p {server.port}", f"-k {root}", "-c listen_addresses=127.0.0.1",
                    "-c max_connections=200"]  # fmt: skip
            if not durable:
                opts += ["-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off"]
            server._run([str(bindir / "pg_ctl"), "-D", str(server.data), "-l",
                         str(root / "server.log"), "-o", " ".join(opts), "-w", "-t", "30",
                         "start"])  # fmt: skip
        except BaseException:
            shutil.rmtree(root, ignore_errors=True)
            raise
        return server

    def _run(self, cmd: list[str]) -> None:
        done = subprocess.run(_as_server_user(cmd), capture_output=True, text=True, cwd=self.root,
                              check=False)  # fmt: skip
        if done.returncode != 0:
            log = self.root / "server.log"
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise RuntimeError(
                f"{Path(cmd[0]).name} failed ({done.returncode}): {done.stderr.strip()}\n{tail}"
            )

    def stop(self) -> None:
        try:
            self._run([str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "immediate",
                       "-w", "stop"])  # fmt: skip
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    async def _admin(self, *statements: str) -> None:
        import asyncpg

        conn = await asyncpg.connect(self.dsn())
        try:
            for sql in statements:
                await conn.execute(sql)
        finally:
            await conn.close()

    async def _ensure_template(self) -> None:
        if self._template_ready:
            return
        from ccrouter.db.engine import make_engine
        from ccrouter.db.migrate import migrate

        await self._admin(f"DROP DATABASE IF EXISTS {TEMPLATE}", f"CREATE DATABASE {TEMPLATE}")
        engine = make_engine(self.url(TEMPLATE))
        try:
            await migrate(engine)
        finally:
            await engine.dispose()
        self._template_ready = True

    async def database(self, *, migrated: bool = False) -> str:
        """A new database (empty, or migrated to head); its SQLAlchemy URL."""
        name = f"t{os.getpid()}_{next(self._names)}"
        if migrated:
            await self._ensure_template()
            await self._admin(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE}")
        else:
            await self._admin(f"CREATE DATABASE {name} TEMPLATE template0")
        return self.url(name)
