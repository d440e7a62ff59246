"""Bluetooth LE cuffs and scales on the kiosk: one bumble host for real and simulated devices.

``host`` is the central (connects, reads Device Information, subscribes to the measurement
indications, reconnects); ``simulator`` runs a cuff and a scale as bumble GATT servers over
bumble's in-process link, so tests and the demo meet the same GATT code a real device does;
``measure`` is the plain-Python wait-and-confirm step the check-up screens drive; ``pairings``
remembers which devices this kiosk uses, by address. Parsing is pure and lives in
``shared.devices``.
"""
