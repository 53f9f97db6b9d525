"""Audit log: who changed which registry entity or user, when, with the state before and after."""
