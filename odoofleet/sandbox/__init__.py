"""A simulated server for `odoofleet dev --sandbox-server`: an in-process SSH server whose
`docker` is the stand-in that the tests use, so a newcomer can watch an instance go from
creating to running with no Odoo server of their own."""
