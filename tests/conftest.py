"""Shared fixtures: paths, the offline data copy, a scratch nbgrader course for grading notebooks, and a
throw-away PostgreSQL server."""
import os
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"

os.environ.setdefault("MPLBACKEND", "Agg")
# Ray clusters in tests stay on 127.0.0.1 (ray 2.60 otherwise advertises the machine's own address)
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
if SHARED_DATA.is_dir():
    os.environ.setdefault("EEP590_DATA", str(SHARED_DATA))


@pytest.fixture(scope="session")
def shared_data():
    """``../shared/data`` beside the repository (MNIST idx files, CIFAR-10 JPEG archive)."""
    if not SHARED_DATA.is_dir():
        pytest.fail(f"the offline data copy is missing: expected it at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def scratch_course(tmp_path_factory):
    """A copy of the course (source/ and nbgrader_config.py) in a temporary directory.

    ``scratch_course.autograde(hw, {student: {notebook_name: nb}})`` grades submissions with
    nbgrader and returns ``{student: {notebook: {grade_id: (score, max_score)}}}``.
    """
    from nbgrader_harness import ScratchCourse

    root = tmp_path_factory.mktemp("course")
    return ScratchCourse(root)


def _initdb():
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    return found[-1] if found else shutil.which("initdb")


PG_PORT = 54329  # names the server's socket file only: it listens on no TCP port


class PostgresServer:
    """A throw-away PostgreSQL server on a Unix socket (the `postgresql` Debian package provides it)."""

    def __init__(self, bindir, base, run_as):
        self.bindir, self.base, self.run_as = bindir, base, run_as
        self.sock = base / "pgsock"

    def url(self, name):
        return f"postgresql+psycopg2://postgres@/{name}?host={self.sock}&port={PG_PORT}"

    def create(self, name, template=None):
        """A new database ``name`` (a copy of ``template`` when given); its URL."""
        createdb = self.bindir / "createdb" if (self.bindir / "createdb").exists() else "createdb"
        subprocess.run(self.run_as + [str(createdb), "-h", str(self.sock), "-p", str(PG_PORT), "-U", "postgres",
                                      *(["-T", template] if template else []), name], check=True, capture_output=True)
        return self.url(name)


@pytest.fixture(scope="session")
def postgres_server():
    """One PostgreSQL server for the session (each test gets its own database: :func:`postgres`)."""
    initdb = _initdb()
    if not initdb:
        pytest.skip("PostgreSQL server binaries are not installed (apt-get install postgresql)")
    bindir = Path(initdb).parent
    base = Path(tempfile.mkdtemp(prefix="eep590-pg-"))  # not under pytest's 0700 tmp: the server user must reach it
    os.chmod(base, 0o755)
    data = base / "pgdata"
    (base / "pgsock").mkdir()
    run_as = []
    if os.geteuid() == 0:  # initdb refuses to run as root
        run_as = ["runuser", "-u", "postgres", "--"]
        shutil.chown(base, "postgres")
        shutil.chown(base / "pgsock", "postgres")
    server = PostgresServer(bindir, base, run_as)
    subprocess.run(run_as + [str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust"],
                   check=True, capture_output=True)
    subprocess.run(run_as + [str(bindir / "pg_ctl"), "-D", str(data), "-w", "-l", str(base / "pg.log"), "-o",
                             f"-k {server.sock} -c listen_addresses='' -p {PG_PORT}", "start"], check=True, capture_output=True)
    try:
        yield server
    finally:
        subprocess.run(run_as + [str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"], capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def postgres(postgres_server):
    """A new, empty database on the session's PostgreSQL server: its URL."""
    return postgres_server.create(f"eep590_{uuid.uuid4().hex[:12]}")
