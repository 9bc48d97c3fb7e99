-- Which Odoo models MCP's tools may read, write and unlink on an instance (issue 18; PATCH
-- mcpModelAccess). Globs; rows folded before it existed get the default, which allows every
-- model (the fixed refusals of api/mcp/policy.py hold whatever this says).
ALTER TABLE instances
    ADD COLUMN IF NOT EXISTS mcp_model_access jsonb NOT NULL
        DEFAULT '{"read": ["*"], "write": ["*"], "unlink": ["*"]}'::jsonb;
