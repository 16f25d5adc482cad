"""The controller database: models, the DB API and Alembic migrations."""
