"""The kiosk's Kivy front end: the only package that imports Kivy."""
