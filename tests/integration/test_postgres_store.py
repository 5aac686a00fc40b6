"""pepper on PostgreSQL, end to end: chosen by its URL everywhere, bad locations refused with clear errors
that never show the password, the schema created by migrations, and the CLI and Python faces on it."""

from __future__ import annotations

import socket
import subprocess
import sys

import psycopg
import pytest

import pepper
from pepper.core import TaskOrchestrator
from pepper.errors import ConfigError, DatabaseReadOnlyError, DatabaseUnreachableError
from pepper.store.location import open_store, redact
from pepper.store.postgres import migrations, schema_sql

PASSWORD = "pepper-secret"


def catalog(url: str) -> dict[str, list[tuple]]:
    """What a schema is made of: columns with types, defaults and nullability; indexes; constraints."""
    with psycopg.connect(url) as conn:
        columns = conn.execute(
            "SELECT table_name, column_name, data_type, is_nullable, column_default, collation_name "
            "FROM information_schema.columns WHERE table_schema = current_schema() AND table_name != 'schema_version' "
            "ORDER BY table_name, ordinal_position"
        ).fetchall()
        indexes = conn.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() ORDER BY indexname"
        ).fetchall()
        checks = conn.execute(
            "SELECT conrelid::regclass::text, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE connamespace = current_schema()::regnamespace ORDER BY 1, 2"
        ).fetchall()
    return {"columns": columns, "indexes": indexes, "constraints": checks}


def test_migrations_reproduce_the_schema(postgres_url, postgres_cluster):
    open_store(postgres_url).close()  # created by the migrations
    other = "schema_" + postgres_url.rsplit("/", 1)[1]
    postgres_cluster.create_database(other)
    try:
        fresh = postgres_cluster.url(other)
        with psycopg.connect(fresh, autocommit=True) as conn:
            conn.execute(schema_sql().encode())
        assert catalog(postgres_url) == catalog(fresh)
        with psycopg.connect(postgres_url) as conn:
            versions = [row[0] for row in conn.execute("SELECT version FROM schema_version ORDER BY version")]
        assert versions == [version for version, _, _ in migrations()]
    finally:
        postgres_cluster.drop_database(other)


def test_a_wrong_password_is_a_typed_error_naming_the_server_never_the_password(postgres_url, postgres_cluster):
    wrong = postgres_cluster.wrong_password_url(postgres_url.rsplit("/", 1)[1])
    with pytest.raises(DatabaseUnreachableError) as caught:
        open_store(wrong)
    message = str(caught.value)
    assert "127.0.0.1" in message and "password authentication failed" in message
    assert wrong.split(":")[2].split("@")[0] not in message and PASSWORD not in message


def test_a_server_that_is_not_there_is_a_typed_error_naming_it():
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(DatabaseUnreachableError) as caught:
        open_store(f"postgresql://someone:{PASSWORD}@127.0.0.1:{port}/nothing", connect_timeout=2)
    assert f"127.0.0.1:{port}" in str(caught.value) and PASSWORD not in str(caught.value)


def test_the_cli_says_what_is_wrong_without_the_password(postgres_url, postgres_cluster, tmp_path):
    wrong = postgres_cluster.wrong_password_url(postgres_url.rsplit("/", 1)[1])
    done = subprocess.run([sys.executable, "-m", "pepper", "tasks", "--db", wrong], capture_output=True, text=True,
                          cwd=tmp_path, timeout=60)  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "cannot connect to the pepper database" in done.stderr and "127.0.0.1" in done.stderr
    assert "not-the-password" not in done.stderr + done.stdout and "-wrong" not in done.stderr + done.stdout


def test_a_database_of_a_newer_pepper_is_refused_and_left_alone(postgres_url):
    open_store(postgres_url).close()
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("INSERT INTO schema_version (version, applied_at) VALUES (999, 0)")
    with pytest.raises(ConfigError, match=r"newer pepper \(schema 999"):
        open_store(postgres_url)


def test_someone_elses_database_is_refused_and_nothing_is_written_to_it(postgres_url):
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE invoices (id int)")
    with pytest.raises(ConfigError, match=r"not a pepper one \(its tables: invoices"):
        open_store(postgres_url)
    with psycopg.connect(postgres_url) as conn:
        tables = conn.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'")
        assert [row[0] for row in tables] == ["invoices"]


def test_reading_commands_do_not_create_a_database(postgres_url, tmp_path):
    done = subprocess.run([sys.executable, "-m", "pepper", "tasks", "--db", postgres_url], capture_output=True,
                          text=True, cwd=tmp_path, timeout=60)  # fmt: skip
    assert done.returncode == 2 and "nothing has been stored there yet" in done.stderr
    with psycopg.connect(postgres_url) as conn:
        assert conn.execute("SELECT to_regclass('tasks')").fetchone() == (None,)


@pytest.mark.parametrize(
    ("location", "kind"),
    [("postgres://u:p@h/db", "postgres"), ("POSTGRESQL://u@h/db", "postgres"), ("postgresql.db", "sqlite"),
     ("data/postgres:5432.db", "sqlite")],
)  # fmt: skip
def test_a_url_and_a_path_are_never_confused(location, kind):
    from pepper.store.location import is_postgres_url

    assert is_postgres_url(location) is (kind == "postgres")


@pytest.mark.parametrize("location", ["mysql://u:secret@h/db", "sqlite:///x.db", "http://example.org/db"])
def test_urls_of_other_databases_are_refused_without_their_password(location, tmp_path):
    with pytest.raises(ConfigError, match="give a SQLite file path") as caught:
        pepper.Runtime(db=location, home=str(tmp_path / "home"))
    assert "secret" not in str(caught.value)
    assert not (tmp_path / "home").exists()


LIBPQ = "host=127.0.0.1 port=5432 user=pepper password=s3cret dbname=pepper"


@pytest.mark.parametrize(
    ("conninfo", "url"),
    [(LIBPQ, "postgresql://pepper:***@127.0.0.1:5432/pepper"),
     ("dbname=jobs  host = db.example.com password='s3cret too' sslmode=require",
      "postgresql://USER:***@db.example.com/jobs?sslmode=require"),
     ("host=db password=s3cret nonsense=1", "postgresql://USER@HOST/NAME")],
)  # fmt: skip
def test_a_libpq_connection_string_is_refused_naming_its_url_never_its_password(conninfo, url, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match="libpq's key=value form") as caught:
        pepper.Runtime(db=conninfo, home=str(tmp_path / "home"))
    assert f"give it as a URL instead: {url} " in str(caught.value)
    assert "s3cret" not in str(caught.value)
    assert list(tmp_path.iterdir()) == []  # no SQLite file named after it, no home


def test_a_libpq_connection_string_is_refused_without_the_driver_too(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setitem(sys.modules, "psycopg", None)  # `import psycopg` fails, as when it is not installed
    with pytest.raises(ConfigError, match=r"postgresql://pepper:\*\*\*@127\.0\.0\.1:5432/pepper") as caught:
        open_store(LIBPQ)
    assert "s3cret" not in str(caught.value)
    assert list(tmp_path.iterdir()) == []


def test_passwords_are_hidden_wherever_a_location_is_shown():
    assert redact("postgresql://pepper:s3cr3t@db:5432/x") == "postgresql://pepper:***@db:5432/x"
    assert (
        redact("postgresql://db/x?password=s3cr3t&sslmode=require") == "postgresql://db/x?password=***&sslmode=require"
    )
    assert redact("/var/lib/pepper.db") == "/var/lib/pepper.db"


def test_a_url_in_pepper_toml_is_not_taken_for_a_path(tmp_path, monkeypatch, postgres_url):
    (tmp_path / "pepper.toml").write_text(f'[pepper]\ndb = "{postgres_url}"\n')
    monkeypatch.chdir(tmp_path)
    with pepper.Runtime() as runtime:
        assert runtime.settings.db == postgres_url
        assert PASSWORD not in repr(runtime) and "***" in repr(runtime)


def test_the_python_faces_and_the_cli_share_one_postgres_database(postgres_url, tmp_path):
    with pepper.Runtime(db=postgres_url, home=str(tmp_path / "home")) as runtime:
        ran = []

        @pepper.agent("doubler", task_types=["double"], runtime=runtime)
        def double(task):
            ran.append(task.task_id)
            return task.inputs["n"] * 2

        orchestrator = TaskOrchestrator(runtime)
        orchestrator.submit_task(task_id="a", task_type="double", inputs={"n": 2})
        orchestrator.submit_task(task_id="b", task_type="double", inputs={"n": 5}, dependencies=["a"])
        results = orchestrator.wait(["a", "b"], timeout=60)
        assert [(s.task_id, s.result) for s in results] == [("a", 4), ("b", 10)] and ran == ["a", "b"]
    cli = [sys.executable, "-m", "pepper"]
    done = subprocess.run([*cli, "status", "b", "--db", postgres_url, "--json"], capture_output=True, text=True,
                          cwd=tmp_path, timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert '"state": "completed"' in done.stdout and '"result": 10' in done.stdout
    done = subprocess.run([*cli, "submit", "double", "--id", "c", "--input", "n=1", "--db", postgres_url],
                          capture_output=True, text=True, cwd=tmp_path, timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr
    store = open_store(postgres_url, create=False)
    try:
        assert store.count_by_state() == {"completed": 2, "pending": 1}
    finally:
        store.close()


def test_commands_suggested_by_the_cli_never_repeat_the_password(postgres_url, tmp_path):
    cli = [sys.executable, "-m", "pepper"]
    subprocess.run([*cli, "submit", "t", "--id", "x", "--db", postgres_url], check=True, cwd=tmp_path, timeout=60)
    for command in (["agents"], ["why", "x"], ["runs"]):
        done = subprocess.run([*cli, *command, "--db", postgres_url], capture_output=True, text=True, cwd=tmp_path,
                              timeout=60)  # fmt: skip
        assert PASSWORD not in done.stdout + done.stderr, command


def test_an_idle_worker_wakes_when_another_process_submits(postgres_url, tmp_path):
    """The worker polls once an hour: only the server's word of the commit (LISTEN/NOTIFY) can wake it."""
    slow = {"poll_interval": "1h", "heartbeat_interval": "1h"}
    with pepper.Runtime(db=postgres_url, home=str(tmp_path / "worker"), **slow) as worker:
        ran = []

        @pepper.agent("echo", task_types=["echo"], runtime=worker)
        def echo(task):
            ran.append(task.task_id)
            return task.inputs

        worker.start()
        with pepper.Runtime(db=postgres_url, home=str(tmp_path / "submitter")) as submitter:
            orchestrator = TaskOrchestrator(submitter)
            orchestrator.submit_task(task_id="ping", task_type="echo", inputs={"n": 1})
            (status,) = orchestrator.wait(["ping"], timeout=60)
        assert status.state.value == "completed" and status.result == {"n": 1} and ran == ["ping"]


def test_work_goes_on_after_the_server_drops_every_connection(postgres_url, tmp_path):
    """As after a server restart or a failover: the pool's connections are gone, the next calls get new ones."""
    with pepper.Runtime(db=postgres_url, home=str(tmp_path / "home")) as runtime:

        @pepper.agent("echo", task_types=["echo"], runtime=runtime)
        def echo(task):
            return task.task_id

        orchestrator = TaskOrchestrator(runtime)
        orchestrator.submit_tasks([{"id": f"a{i}", "type": "echo"} for i in range(20)])
        assert {s.state.value for s in orchestrator.wait([f"a{i}" for i in range(20)], timeout=60)} == {"completed"}
        with psycopg.connect(postgres_url, autocommit=True) as admin:
            dropped = admin.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            ).fetchone()[0]
        assert dropped >= 2  # the pool's and the listener's
        assert orchestrator.get_task_status("a3").result == "a3"  # a read on a dropped connection goes again
        ids = [f"b{i}" for i in range(20)]
        orchestrator.submit_tasks([{"id": tid, "type": "echo"} for tid in ids])  # begun again on a live one
        statuses = orchestrator.wait(ids, timeout=60)
        assert [s.result for s in statuses] == ids


def test_without_the_driver_a_url_is_a_clear_error(tmp_path):
    code = (
        "import sys; sys.modules['psycopg'] = None\n"  # as if the postgres extra were not installed
        "import pepper\n"
        "try:\n"
        "    pepper.Runtime(db='postgresql://u:s3cret@db.example/x').store\n"
        "except pepper.PepperError as exc:\n"
        "    print(type(exc).__name__, exc)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("ConfigError") and "pip install 'pepper[postgres]'" in done.stdout
    assert "s3cret" not in done.stdout


def test_a_database_that_takes_no_writes_is_unhealthy_and_writes_raise_a_typed_error(postgres_url):
    open_store(postgres_url).close()  # the schema, while writes are taken
    name = postgres_url.rsplit("/", 1)[1]
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f'ALTER DATABASE "{name}" SET default_transaction_read_only = on')
    store = open_store(postgres_url)  # opening writes nothing
    try:
        reason = store.probe_write()
        assert reason is not None and "cannot be written" in reason and "read-only" in reason
        with pytest.raises(DatabaseReadOnlyError, match="cannot be written"):
            store.workers.register("w1", "host", 1, 0.0)
        assert store.workers.live() == []
    finally:
        store.close()
        with psycopg.connect(postgres_url, autocommit=True) as conn:
            conn.execute("SET default_transaction_read_only = off")
            conn.execute(f'ALTER DATABASE "{name}" RESET default_transaction_read_only')
    store = open_store(postgres_url)
    try:
        assert store.probe_write() is None
    finally:
        store.close()


def test_closing_a_store_wakes_its_change_listener_instead_of_waiting_out_its_wait(postgres_url, monkeypatch):
    from pepper.store import pg_listen

    monkeypatch.setattr(pg_listen, "NOTIFY_WAIT", 3600.0)  # each wait for a notification: only a wake ends it
    other = open_store(postgres_url)  # another process's listener, in effect: the wake is not news to it
    store = open_store(postgres_url)
    try:
        listener, heard = store._listener, other._listener
        for _ in range(3000):  # both connected, and so listening
            if listener._connected and heard._connected:
                break
            listener._stop.wait(0.01)
        assert listener._connected and heard._connected
        before = heard.version
        store.close()
        assert not listener._thread.is_alive()  # woken: the join (5 s at most) did not time out
        assert heard.version == before  # nobody else counted the wake as a change
    finally:
        other.close()
    assert not heard._thread.is_alive()
