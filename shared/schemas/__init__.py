"""Payload schemas of the kiosk API, shared by the kiosk client and the onsite server.

One module per API area; import from the submodule (``shared.schemas.bookings``...).
"""
