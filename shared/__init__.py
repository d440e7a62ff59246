"""Pure-Python core shared by the kiosk and the onsite server: no Kivy, no Flask, no network."""
