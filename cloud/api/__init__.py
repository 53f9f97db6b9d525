"""The hub's HTTP API: app assembly (cloud.api.app.create_app), shared dependencies, and the routes over
other domains' data (readings, edge monitoring). Registry, users and audit routes live in their domains."""
