"""Projections: the projector runtime and the read models the API serves (DESIGN.md)."""
