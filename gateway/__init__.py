"""Sharing an uplink with the mesh: NAT, default route, upstream DNS, Tor
(see issue 6)."""
