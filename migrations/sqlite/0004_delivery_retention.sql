-- Retention: finished deliveries (processed, ignored, failed) are pruned some days after
-- they ended. This index finds the oldest of them without reading the whole inbox; pending
-- deliveries have no finished_at and stay out of it.
CREATE INDEX deliveries_finished ON deliveries (finished_at) WHERE finished_at IS NOT NULL;
