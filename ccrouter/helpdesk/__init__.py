"""Second-line tickets from a call card (a JSON webhook connector, an inbound status webhook)
and the caller's e-mail on creation and resolution."""
