"""Example Slipway plugin: a `slack-message` step and a `statuspage` gate signal."""
