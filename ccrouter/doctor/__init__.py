"""`ccrouter doctor --config FILE`: checks a running Asterisk against the config (AMI login and
classes, event filter, channelvars, generated contexts and queues loaded, operators' devices,
FastAGI reachable from Asterisk, clock skew). `model` is pure (checks and comparisons),
`ami` the probing client, `checks` runs them, `cli` is the command."""
