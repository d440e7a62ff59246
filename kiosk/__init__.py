"""The Kivy touchscreen kiosk app; depends on `shared`, never on `onsite_server`."""
