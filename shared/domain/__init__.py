"""Pure rules of Slipway: models, the release state machine, validation. Standard library only."""
