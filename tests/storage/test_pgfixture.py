"""The PostgreSQL test fixture itself."""

import psycopg
import pytest


@pytest.mark.postgres
def test_server_answers_on_its_url(postgres_server):
    with psycopg.connect(postgres_server.url) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
    with psycopg.connect(postgres_server.dsn) as conn:
        assert conn.execute("SHOW fsync").fetchone() == ('off',)


@pytest.mark.postgres
def test_pg_db_is_fresh_and_separate(pg_db, postgres_server):
    with psycopg.connect(pg_db) as conn:
        name = conn.execute("SELECT current_database()").fetchone()[0]
        tables = conn.execute(
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone()[0]
    assert name.startswith('test_')
    assert name != 'postgres'
    assert tables == 0
