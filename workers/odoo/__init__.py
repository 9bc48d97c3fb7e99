"""Talking to an instance's Odoo from the control plane: JSON-RPC over the server's SSH link."""
