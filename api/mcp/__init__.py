"""The MCP server (issue 18): AI assistants operate the fleet and read Odoo data."""
