"""Views of the portal app: public home, setup wizard, login, dashboard."""
