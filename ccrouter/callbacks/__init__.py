"""Automatic callback of abandoned calls and scheduled outbound calls.

`model` is the pure policy, `service` the dispatcher, `store` the requests and attempts,
`legs`/`operator_first` the originated legs, `agi` the in-queue offer, `feature` the wiring."""
