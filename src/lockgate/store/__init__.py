"""The metadata store (SQLAlchemy Core + Alembic): the only layer that talks to the database."""
