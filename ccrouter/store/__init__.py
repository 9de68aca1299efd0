"""Card storage: SQLite through SQLAlchemy Core (async), Alembic migrations, the
group-committing card writer, the card-number allocator and the read queries."""

from ccrouter.store.engine import make_engine
from ccrouter.store.migrate import migrate
from ccrouter.store.numbers import CardNumbers
from ccrouter.store.queries import Card, CardStore
from ccrouter.store.writer import CardWriter, CardWriterStopped, WriterStats

__all__ = [
    "Card",
    "CardNumbers",
    "CardStore",
    "CardWriter",
    "CardWriterStopped",
    "WriterStats",
    "make_engine",
    "migrate",
]
