"""Skill-based routing on stock Asterisk: the feature package.

`ccrouter.routing.feature.install(app)` wires the membership service (skills -> queue members
over AMI), operator state (database, polled for CLI changes), the recent-calls cache for
last-agent routing, and the engineer hook into the router. `model` turns settings into the pure
routing values; `state` keeps operator state; `hook` loads and calls an engineer's hook.
"""
