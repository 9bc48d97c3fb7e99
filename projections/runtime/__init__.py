"""The projector runtime: applying the log to projections (checkpoints, batches, leader and
standbys, status), rebuilding and replaying them, and the parts read models are built from
(folders, table rows, envelopes, readers, cursors). It knows no read model."""
