"""Settings: defaults < YAML file < environment, into one frozen, validated object.

`schema` holds the models, `loader` reads the YAML keeping line numbers so every error names
file, line and key, `checks` the cross-field rules.
"""

from ccrouter.config.asterisk import AmiSettings, AsteriskSettings, NodeSettings
from ccrouter.config.checks import KeyPath
from ccrouter.config.loader import (
    ENV_FILE,
    ConfigError,
    ConfigInvalid,
    check_settings,
    dotted,
    load_settings,
    resolve_sqlite_url,
)
from ccrouter.config.schema import *  # noqa: F403  (the models are the package's public API)
from ccrouter.config.schema import ENV_OVERRIDES, Settings

__all__ = [
    "ENV_FILE",
    "ENV_OVERRIDES",
    "AmiSettings",
    "AsteriskSettings",
    "ConfigError",
    "ConfigInvalid",
    "KeyPath",
    "NodeSettings",
    "Settings",
    "check_settings",
    "dotted",
    "load_settings",
    "resolve_sqlite_url",
]
