"""Captive portal: the firewall that holds new clients, OS probes, RFC 8908
and the splash page (see issue 4)."""
