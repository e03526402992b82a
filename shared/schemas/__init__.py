"""Request bodies of the HTTP API, validated with pydantic; errors become field errors."""
