"""privsdk adapter (being written)."""
