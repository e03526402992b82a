"""Slipway's application code: domain (pure rules), services (use cases), ports and adapters."""
