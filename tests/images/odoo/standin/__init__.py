"""Odoo stand-in of the real-Docker test tier."""
