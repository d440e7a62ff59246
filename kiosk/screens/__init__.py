"""Kiosk screens: each has a .py (behaviour) and a .kv (layout)."""
