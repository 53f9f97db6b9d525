"""The hub: ingest, storage, registry, API, auth and console. Each domain owns its models, services and routes."""
