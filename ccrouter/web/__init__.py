"""The web site: HTTP API, live streams, wallboard and operator pages, metrics (`feature` wires
it; each feature's endpoints come from its own `http.py`)."""
