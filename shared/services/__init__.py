"""Use cases: each reads state, asks the domain what to do, and writes the outcome atomically."""
