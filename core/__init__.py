"""Shared types, protocols, errors and artifact references. Imports nothing of ours."""
