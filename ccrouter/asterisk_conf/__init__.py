"""The Asterisk files ccrouter needs, generated from the settings. Pure: text in, text out.

`extensions_conf(settings)` is the dialplan (include it from extensions.conf); `manager_conf()`
is the AMI user section (append it to manager.conf); `queues_conf`/`queuerules_conf` the
queues and their penalty rules. One module per generated file (`extensions`, `manager`,
`queues`, `queuerules`); this package is their public face. Every context, variable and AGI
script name comes from `ccrouter.dialplan`; the committed files in `dialplan/` are this output
for `config/ccrouter.yaml` (a test regenerates and compares them).
"""

from ccrouter.asterisk_conf.extensions import EXTENSIONS_FILE, agi_url, extensions_conf
from ccrouter.asterisk_conf.manager import CHANNELVARS, MANAGER_FILE, manager_conf
from ccrouter.asterisk_conf.queuerules import QUEUERULES_FILE, queuerules_conf
from ccrouter.asterisk_conf.queues import QUEUES_FILE, queues_conf

__all__ = [
    "CHANNELVARS",
    "EXTENSIONS_FILE",
    "MANAGER_FILE",
    "QUEUERULES_FILE",
    "QUEUES_FILE",
    "agi_url",
    "extensions_conf",
    "manager_conf",
    "queuerules_conf",
    "queues_conf",
]
