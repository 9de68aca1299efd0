"""The pure domain: plain values in, decisions out. No asyncio, panoramisk or SQLAlchemy here."""
