-- A server's publicHostPorts (ServerRegistered.public_host_ports, fixed at registration) gets
-- its column; servers registered before read their setting from their registration event.
ALTER TABLE servers ADD COLUMN public_host_ports boolean NOT NULL DEFAULT false;
UPDATE servers s SET public_host_ports = true
    FROM events e
    WHERE e.stream_id = 'server-' || s.id
      AND e.event_type = 'ServerRegistered'
      AND (e.data->>'public_host_ports')::boolean;

-- An instance's restartCount and lastRestartAt now mean Docker's restarts of the container
-- serving it (docs/instances.md "Restart counts"): the health read model holds both, the
-- instance read joins them, and the instances table no longer stores a count of control
-- restarts. last_restart_at is filled as observations arrive; `odoofleet projections
-- rebuild health` fills it from the whole log.
ALTER TABLE health ADD COLUMN last_restart_at timestamptz;
ALTER TABLE instances DROP COLUMN restart_count, DROP COLUMN last_restart_at;
