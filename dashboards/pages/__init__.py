"""One module per page: ``layout(query)`` and ``register(app, client)``."""
