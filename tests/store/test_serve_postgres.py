"""``cosmo serve`` on a PostgreSQL database given by ``COSMO_DATABASE_URL``."""

from __future__ import annotations

from pathlib import Path

from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import select
from sqlalchemy.ext.asyncio import create_async_engine

from cosmo.store.db import alembic_config
from cosmo.store.models import Agent
from tests.cosmo_server import cosmo_server, demo_settings
from tests.postgres import empty_database


async def test_serve_migrates_and_syncs_agents_on_postgres(tmp_path: Path, postgres_url: str) -> None:
    await empty_database(postgres_url)
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    async with cosmo_server(tmp_path, env={"COSMO_DATABASE_URL": postgres_url}) as server:
        status, _ = await server.api("GET", "/healthz", token=None)
        assert status == 200
        engine = create_async_engine(postgres_url)
        try:
            async with engine.connect() as connection:
                revision = await connection.run_sync(
                    lambda sync: MigrationContext.configure(sync).get_current_revision()
                )
                extensions = (await connection.execute(select(Agent.extension).order_by(Agent.extension))).scalars()
                assert (revision, list(extensions)) == (
                    head,
                    sorted(agent["extension"] for agent in demo_settings()["agents"]),
                )
        finally:
            await engine.dispose()
    # The demo's SQLite file is not used when a URL is given.
    assert not (server.data_dir / "cosmo.db").exists()
