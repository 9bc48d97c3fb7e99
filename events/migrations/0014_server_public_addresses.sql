-- A server's publicIpv4/publicIpv6 (issue 16: where custom domains must point) get their
-- columns: given at registration (then kept: public_addresses_given), else detected by the
-- last validation. Servers projected before read theirs from their own events.
ALTER TABLE servers
    ADD COLUMN public_ipv4 text,
    ADD COLUMN public_ipv6 text,
    ADD COLUMN public_addresses_given boolean NOT NULL DEFAULT false;
UPDATE servers s
    SET public_ipv4 = e.data->>'public_ipv4',
        public_ipv6 = e.data->>'public_ipv6',
        public_addresses_given = true
    FROM events e
    WHERE e.stream_id = 'server-' || s.id
      AND e.event_type = 'ServerRegistered'
      AND (e.data->>'public_ipv4' IS NOT NULL OR e.data->>'public_ipv6' IS NOT NULL);
UPDATE servers s
    SET public_ipv4 = last.data->>'public_ipv4', public_ipv6 = last.data->>'public_ipv6'
    FROM (
        SELECT DISTINCT ON (stream_id) stream_id, data
        FROM events
        WHERE event_type = 'ServerValidated'
        ORDER BY stream_id, version DESC
    ) last
    WHERE last.stream_id = 'server-' || s.id AND NOT s.public_addresses_given;
