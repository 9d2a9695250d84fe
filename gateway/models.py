"""Models of the gateway app; filled by its own issue."""
