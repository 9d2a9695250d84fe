"""Community services: catalogue, dependencies, activation, health and
announcement (see issue 5)."""
