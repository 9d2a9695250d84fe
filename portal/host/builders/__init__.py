"""Typed argv builders, one module per program.

Each function takes typed, validated parameters and returns a
:class:`~portal.host.commands.Command`; nothing here runs anything.
"""
