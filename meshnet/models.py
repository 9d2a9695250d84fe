"""Models of the meshnet app; filled by its own issue."""
