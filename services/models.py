"""Models of the services app; filled by its own issue."""
