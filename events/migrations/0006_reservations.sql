-- Slug reservation events by slug, across organizations: a create finds in one index scan
-- whether an instance made before host names were reserved still holds `<slug>.<base domain>`
-- (commands/legacy_reservations.py). Only reservation events are in it, so it stays small.
CREATE INDEX events_slug_reservations ON events ((data->>'slug'))
    WHERE event_type IN ('SlugReserved', 'SlugReleased');
