"""`ccrouter demo`: the daemon against the built-in PBX simulator — a day of calls, the
wallboard and an operator page with ready tokens, a live status, and at the end a per-queue
table and an HTML report. `day` (the day's shape and clock), `traffic` (the callers),
`status` (the live line), `report` and `html` (the numbers and the report), `session` (one
run), `main` (the command)."""

from ccrouter.demo.main import main
from ccrouter.demo.session import demo_settings

__all__ = ["demo_settings", "main"]
