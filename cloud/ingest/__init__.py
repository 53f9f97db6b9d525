"""Ingest: MQTT uplink messages from the edges into the database, acknowledged only once committed."""
