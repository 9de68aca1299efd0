"""The database every feature shares: the engine (SQLite or PostgreSQL URL), the one schema
(`tables`), and its Alembic migrations. Each feature owns its own queries (`<feature>/store.py`)."""
