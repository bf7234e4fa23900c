"""Routers, one per area of Graph."""
