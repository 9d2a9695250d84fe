"""The lab: mesh nodes and clients in network namespaces (see DESIGN.md)."""
