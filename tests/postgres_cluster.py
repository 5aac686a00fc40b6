"""A throw-away PostgreSQL server for the tests: a cluster of its own in a temporary folder, or one given.

``PostgresCluster`` runs ``initdb`` and ``pg_ctl`` of the installed PostgreSQL (15 or newer) into a fresh
folder under the system's temporary directory, listens on a free port of 127.0.0.1 and on a unix socket in
that folder, and removes everything on ``stop()``. PostgreSQL refuses to run as root, so when the tests run
as root every server binary runs as the ``postgres`` OS user (``runuser``), which owns the folder.

Two roles: the superuser (``postgres``, trusted over the socket and 127.0.0.1) administers, and the role the
tests connect as (``pepper``) must give its password (scram-sha-256), so a wrong password is refused like
on a real server. Each test database is owned by ``pepper``, so it may create its schema there.

``ExternalPostgres`` offers the same methods over a server someone already runs
(``PEPPER_TEST_POSTGRES_URL``); it never starts or stops it.
"""

from __future__ import annotations

import contextlib
import getpass
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from typing import Protocol
from urllib.parse import quote, urlsplit, urlunsplit

ROLE = "pepper"
PASSWORD = "pepper-secret"
WRONG_PASSWORD = "not-the-password"
SUPERUSER = "postgres"
INSTALL_HINT = "install postgresql-15"

#: Durability is of no use to a cluster thrown away after the run; these make it fast.
SETTINGS = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "200",
    "log_min_messages": "warning",
}


class PostgresUnavailable(Exception):
    """PostgreSQL cannot be started here; ``reason`` says why (for the skip message)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class PostgresServer(Protocol):
    """What the fixtures need of a server: URLs for the test role and fresh databases."""

    def url(self, dbname: str) -> str: ...
    def wrong_password_url(self, dbname: str) -> str: ...
    def create_database(self, name: str) -> None: ...
    def drop_database(self, name: str) -> None: ...
    def stop(self) -> None: ...


def find_bindir() -> Path:
    """The folder of ``initdb``/``pg_ctl``: ``pg_config --bindir``, else the newest /usr/lib/postgresql/*/bin."""
    candidates: list[Path] = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, timeout=10, check=True)
            candidates.append(Path(out.stdout.strip()))

    def version(path: str) -> tuple[int, ...]:
        name = Path(path).parent.name
        return tuple(int(part) for part in name.split(".") if part.isdigit())

    candidates += [Path(p) for p in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=version, reverse=True)]
    for folder in candidates:
        if (folder / "initdb").is_file() and (folder / "pg_ctl").is_file():
            return folder
    raise PostgresUnavailable(f"no initdb found ({INSTALL_HINT})")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _tail(text: str, lines: int = 15) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def _admin_sql(conninfo: str, *statements: str) -> None:
    import psycopg

    with psycopg.connect(conninfo, autocommit=True, connect_timeout=10) as conn:
        for statement in statements:
            conn.execute(statement)


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class PostgresCluster:
    """A PostgreSQL cluster of its own: ``start()``, ``url(dbname)``, fresh databases, ``stop()``."""

    def __init__(self, startup_timeout: float = 60.0) -> None:
        self.startup_timeout = startup_timeout
        self.root: Path | None = None
        self.port = 0
        self.postmaster_pid: int | None = None
        self._bindir: Path | None = None
        self._run_as: list[str] = []

    @property
    def data_dir(self) -> Path:
        assert self.root is not None, "the cluster is not started"
        return self.root / "data"

    @property
    def socket_dir(self) -> Path:
        assert self.root is not None, "the cluster is not started"
        return self.root / "socket"

    def start(self) -> None:
        """Create and start the cluster, or raise ``PostgresUnavailable`` (leaving nothing behind)."""
        try:
            import psycopg  # noqa: F401
        except ImportError:
            raise PostgresUnavailable("psycopg is not installed (pip install 'pepper[postgres]')") from None
        self._bindir = find_bindir()
        self._run_as = self._os_user()
        self.root = Path(tempfile.mkdtemp(prefix="pepper-pg-"))
        try:
            self._init()
            self._launch()
            _admin_sql(
                self._admin_conninfo("postgres"),
                f"CREATE ROLE {ROLE} LOGIN CREATEDB PASSWORD '{PASSWORD}'",
            )
        except BaseException:
            self.stop()
            raise

    def _os_user(self) -> list[str]:
        """The command prefix that runs a server binary as an OS user PostgreSQL accepts."""
        if os.geteuid() != 0:
            return []
        try:
            pwd.getpwnam(SUPERUSER)
        except KeyError:
            raise PostgresUnavailable("the tests run as root and there is no `postgres` OS user to run it") from None
        runuser = shutil.which("runuser")
        if runuser is None:
            raise PostgresUnavailable("the tests run as root and `runuser` is not installed") from None
        return [runuser, "-u", SUPERUSER, "--"]

    def _run(self, binary: str, *args: str, timeout: float) -> subprocess.CompletedProcess[str]:
        assert self._bindir is not None and self.root is not None
        # cwd: postgres binaries fail when they cannot read the current directory (root's home, say).
        return subprocess.run(
            [*self._run_as, str(self._bindir / binary), *args],
            cwd=self.root,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def _init(self) -> None:
        assert self.root is not None
        self.socket_dir.mkdir()
        if self._run_as:
            owner = pwd.getpwnam(SUPERUSER)
            for path in (self.root, self.socket_dir):
                os.chown(path, owner.pw_uid, owner.pw_gid)
        result = self._run(
            "initdb",
            *("-D", str(self.data_dir), "-U", SUPERUSER, "--auth=trust", "--encoding=UTF8", "--locale=C"),
            "--no-sync",
            "--no-instructions",
            timeout=self.startup_timeout,
        )
        if result.returncode != 0:
            raise PostgresUnavailable(f"initdb failed (exit {result.returncode}): {_tail(result.stderr)}")
        # The first matching line wins: the test role must give its password, everyone else is trusted.
        (self.data_dir / "pg_hba.conf").write_text(
            f"local all all trust\nhost all {ROLE} 127.0.0.1/32 scram-sha-256\nhost all all 127.0.0.1/32 trust\n"
        )

    def _launch(self) -> None:
        """``pg_ctl start -w`` on a free port; a port taken in the meantime gets another try."""
        failure = ""
        for _ in range(3):
            self.port = free_port()
            settings = {
                **SETTINGS,
                "listen_addresses": "'127.0.0.1'",
                "port": str(self.port),
                "unix_socket_directories": f"'{self.socket_dir}'",
            }
            with (self.data_dir / "postgresql.conf").open("a") as conf:
                conf.write("".join(f"{key} = {value}\n" for key, value in settings.items()))
            log = self.data_dir.parent / "server.log"
            result = self._run(
                "pg_ctl",
                *("start", "-w", "-t", str(int(self.startup_timeout)), "-D", str(self.data_dir), "-l", str(log)),
                timeout=self.startup_timeout + 10,
            )
            if result.returncode == 0:
                self.postmaster_pid = self._read_pid()
                return
            failure = _tail(log.read_text(errors="replace") if log.exists() else result.stderr)
            if "could not bind" not in failure and "already in use" not in failure:
                break
        raise PostgresUnavailable(f"pg_ctl start failed: {failure}")

    def _read_pid(self) -> int | None:
        with contextlib.suppress(OSError, ValueError, IndexError):
            return int((self.data_dir / "postmaster.pid").read_text().splitlines()[0])
        return None

    def stop(self) -> None:
        """Stop the server at once (its data is thrown away) and remove the folder; safe to call twice."""
        if self.root is None:
            return
        if (self.data_dir / "postmaster.pid").exists():
            with contextlib.suppress(subprocess.SubprocessError, OSError):
                self._run("pg_ctl", "stop", "-m", "immediate", "-w", "-D", str(self.data_dir), timeout=30)
        self._kill_leftover()
        shutil.rmtree(self.root, ignore_errors=True)
        self.root = None
        self.postmaster_pid = None

    def _kill_leftover(self) -> None:
        """If pg_ctl could not stop the postmaster, kill it: no server may outlive the run."""
        import psutil

        if self.postmaster_pid is None:
            return
        with contextlib.suppress(psutil.Error):
            process = psutil.Process(self.postmaster_pid)
            if str(self.data_dir) in " ".join(process.cmdline()):
                process.kill()
                process.wait(10)

    def restart(self) -> None:
        """Restart the server at once (``pg_ctl restart -m fast``): every connection is dropped, as in a failover;
        returns once it takes connections again."""
        log = self.data_dir.parent / "server.log"
        result = self._run(
            "pg_ctl",
            *("restart", "-m", "fast", "-w", "-t", str(int(self.startup_timeout)), "-D", str(self.data_dir)),
            *("-l", str(log)),
            timeout=self.startup_timeout + 10,
        )
        if result.returncode != 0:
            raise PostgresUnavailable(f"pg_ctl restart failed: {_tail(result.stderr or result.stdout)}")
        self.postmaster_pid = self._read_pid()

    def _admin_conninfo(self, dbname: str) -> str:
        return f"host={self.socket_dir} port={self.port} user={SUPERUSER} dbname={dbname}"

    def url(self, dbname: str) -> str:
        """``postgresql://pepper:pepper-secret@127.0.0.1:PORT/dbname``: the test role over TCP, password checked."""
        return f"postgresql://{ROLE}:{PASSWORD}@127.0.0.1:{self.port}/{dbname}"

    def wrong_password_url(self, dbname: str) -> str:
        """Like ``url`` with a wrong password: the server refuses it."""
        return f"postgresql://{ROLE}:{WRONG_PASSWORD}@127.0.0.1:{self.port}/{dbname}"

    def create_database(self, name: str) -> None:
        """An empty database owned by the test role (template0: no copy of anything, quick)."""
        _admin_sql(
            self._admin_conninfo("postgres"), f"CREATE DATABASE {_quote_ident(name)} OWNER {ROLE} TEMPLATE template0"
        )

    def drop_database(self, name: str) -> None:
        """Drop it even if a test left connections open."""
        _admin_sql(self._admin_conninfo("postgres"), f"DROP DATABASE IF EXISTS {_quote_ident(name)} WITH (FORCE)")


class ExternalPostgres:
    """A server someone runs already, named by a URL whose role may create databases; never stopped here."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("postgresql", "postgres") or not parts.hostname:
            raise PostgresUnavailable("PEPPER_TEST_POSTGRES_URL must be postgresql://user:password@host:port/dbname")
        self._parts = parts
        self._admin_url = url

    def start(self) -> None:
        try:
            _admin_sql(self._admin_url, "SELECT 1")
        except ImportError:
            raise PostgresUnavailable("psycopg is not installed (pip install 'pepper[postgres]')") from None
        except Exception as exc:  # any failure to connect makes the tests skip, naming the host only
            raise PostgresUnavailable(
                f"cannot connect to PEPPER_TEST_POSTGRES_URL (host {self._parts.hostname}): {type(exc).__name__}"
            ) from None

    def _with(self, dbname: str, password: str | None) -> str:
        parts = self._parts
        netloc = parts.netloc
        if password is not None:
            user = parts.username or getpass.getuser()
            host = parts.hostname or ""
            netloc = f"{quote(user, safe='')}:{quote(password, safe='')}@{host}"
            if parts.port:
                netloc += f":{parts.port}"
        return urlunsplit((parts.scheme, netloc, "/" + dbname, parts.query, ""))

    def url(self, dbname: str) -> str:
        return self._with(dbname, None)

    def wrong_password_url(self, dbname: str) -> str:
        return self._with(dbname, (self._parts.password or "") + "-wrong")

    def create_database(self, name: str) -> None:
        _admin_sql(self._admin_url, f"CREATE DATABASE {_quote_ident(name)} TEMPLATE template0")

    def drop_database(self, name: str) -> None:
        _admin_sql(self._admin_url, f"DROP DATABASE IF EXISTS {_quote_ident(name)} WITH (FORCE)")

    def stop(self) -> None:
        """Nothing to stop: the server is not ours."""


def start_server(startup_timeout: float = 60.0) -> PostgresServer:
    """The server the tests use: ``PEPPER_TEST_POSTGRES_URL`` when set, else a cluster of our own."""
    given = os.environ.get("PEPPER_TEST_POSTGRES_URL")
    server: PostgresCluster | ExternalPostgres = ExternalPostgres(given) if given else PostgresCluster(startup_timeout)
    server.start()
    return server
