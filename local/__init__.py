"""The local stack: Azurite, a Functions host, and emulators of the Azure services Slipway calls.

Development and test tooling only: listed in `.funcignore`, never deployed.
"""
