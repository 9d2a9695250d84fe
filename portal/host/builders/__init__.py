"""Typed argv builders, one module per program.

Each function takes typed, validated parameters and returns a
:class:`~portal.host.commands.Command`; nothing here runs anything. A bad
parameter raises :class:`~portal.host.errors.InvalidValue` before any
Command exists, and the tests pin every argv as an exact tuple.

- ``inspect``: read-only ``ip -j`` (addresses, links, routes)
- ``nft``: check and apply rule files, list and delete the portal's tables
- ``sysctl``: a whitelist of forwarding/ARP/RA switches
- ``arping``: duplicate address detection (Habets arping, Debian's ``arping``)
- ``tor``: ``tor --verify-config`` and tor's own arguments under a supervisor
- ``netns``, ``link``, ``babeld``, ``dnsmasq``, ``dhclient``, ``process``:
  used by the lab and the mesh (owned by the lab)
"""
