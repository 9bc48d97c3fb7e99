"""Projections (DESIGN.md): one module per read model the API serves, holding its fold and its
queries; the catalog of those odoofleet runs; and, in projections/runtime/, the machinery that
applies the log to them, which knows no read model."""
