"""Replication between regions: bundles, signatures, overlays, catalogue, metrics."""
