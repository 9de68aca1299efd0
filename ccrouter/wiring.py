"""The features' declarations, registered with the core they extend.

The core offers seams a feature plugs into without the core knowing it: config sections
(`ccrouter.config.sections`). This module is the one place that names what each feature adds
there; `register()` adds it (idempotent). It runs when this module is imported, which
`ccrouter.app` and `ccrouter.cli` do, so anything that loads the settings or opens the database
through them sees every feature.
"""

from __future__ import annotations

from ccrouter.config.sections import add_section


def register() -> None:
    """Add every feature's declarations to the core's registries (again: no-op)."""
    from ccrouter.callbacks.config import SECTION as callbacks

    add_section(callbacks)


register()
