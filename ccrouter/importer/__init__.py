"""`ccrouter import`: a starter config from an existing app_queue set-up.

`model` (pure: parsed queues -> config data with comments), `names` (the guesses from queue
and interface names), `render` (that data as commented YAML), the readers `ami` (QueueStatus of
a running Asterisk) and `queues_conf` (queues.conf files), and `cli`.
"""
