"""Blueprints, cut by audience; each enforces its own authentication once."""
