"""Models of the captive app; filled by its own issue."""
