"""The wire to Asterisk, no business logic: `ami/` (connection, parser, translation into the
typed `events`) and `agi/` (the FastAGI server and sessions)."""
