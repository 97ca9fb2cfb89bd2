"""The PostgreSQL test fixture itself."""

import psycopg
import pytest


@pytest.mark.postgres
def test_server_answers_on_its_url(postgresServer):
    with psycopg.connect(postgresServer.url) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
    with psycopg.connect(postgresServer.dsn) as conn:
        assert conn.execute("SHOW fsync").fetchone() == ('off',)


@pytest.mark.postgres
def test_pg_db_is_fresh_and_separate(pgDb, postgresServer):
    with psycopg.connect(pgDb) as conn:
        name = conn.execute("SELECT current_database()").fetchone()[0]
        tables = conn.execute(
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone()[0]
    assert name.startswith('test_')
    assert name != 'postgres'
    assert tables == 0
