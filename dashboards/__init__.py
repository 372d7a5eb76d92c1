"""The Dash dashboard, a client of the REST API."""
