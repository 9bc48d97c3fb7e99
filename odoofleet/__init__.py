"""odoofleet's composition root: settings, the CLI and the wiring of each entry point."""
