"""Mesh networking: interfaces, wireless mesh, addresses, DHCP, routing,
neighbours, mesh names and the directory of nodes (see issue 3)."""
