"""Automatic callback of abandoned calls and scheduled outbound calls.

`model` is the pure policy, `service` the dispatcher (`intake` its requests and events,
`resync` its reconnects and reloads), `store` the requests and attempts,
`legs`/`operator_first` the originated legs, `agi` the in-queue offer, `feature` the wiring."""
