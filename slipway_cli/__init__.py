"""`slipway`: the command line for pipelines and people. Talks to the HTTP API only."""
