-- The instance's auto subdomain as a domain row of its own (issue 16, item 3): recorded on a
-- `domain-<uuid>` stream like a custom domain, marked so the API shows it first and refuses
-- its removal. Custom domains projected before this are not auto-generated.
ALTER TABLE domains ADD COLUMN is_auto_generated boolean NOT NULL DEFAULT false;
