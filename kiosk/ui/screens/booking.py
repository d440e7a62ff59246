"""Booking an event's time, and the QR codes to take away."""

from __future__ import annotations

import io
from typing import Any

from kivy.core.image import Image as CoreImage
from kivy.factory import Factory
from kivy.properties import BooleanProperty, StringProperty
from kivy.uix.image import Image
from kivy.utils import escape_markup

from ..base import KioskScreen
from ..lang import tr


class BookingScreen(KioskScreen):
    """Events, then slots with seats left, then confirm; your bookings; offline says so."""

    kv_name = "booking"
    offline = BooleanProperty(False)
    confirm_button: Any = None  # the confirmation's yes and no, while it shows
    keep_button: Any = None
    heading = StringProperty("")
    message = StringProperty("")

    def on_pre_enter(self, *args: Any) -> None:
        """Load the member's bookings (online only)."""
        self.visit.load_bookings()
        self.visit.choose_event(None)
        super().on_pre_enter(*args)

    def refresh(self) -> None:
        """Show events, or the chosen event's slots, and the member's bookings."""
        visit = self.visit
        self.offline = visit.needs_connection
        self.message = tr._(visit.message).format(**visit.message_args) if visit.message else ""
        box = self.ids.entries
        box.clear_widgets()
        if self.offline:
            self.heading = tr._("Booking needs the connection")
            return
        if visit.pending is not None:
            self._confirmation(box)
            return
        if visit.event is None:
            self.heading = tr._("Choose an event")
            for booking in visit.bookings:
                self._add_booking(box, booking)
            events = visit.events()
            for event in events:
                seats = sum(s.seats_left for s in event.slots)
                title = visit.event_title(event)
                button = Factory.BigButton(
                    text=f"{title}\n" + tr._("{n} seats left").format(n=seats))
                button.bind(on_release=lambda _b, e=event.id: self._event(e))
                box.add_widget(button)
            if not events:
                box.add_widget(Factory.Lead(text=tr._("There are no events to book right now.")))
            return
        self.heading = tr._("Choose a time") if visit.moving is None else \
            tr._("Choose a new time")
        for slot in visit.slots():
            left = tr._("{n} seats left").format(n=slot.seats_left) if slot.seats_left > 0 \
                else tr._("Full: join the waitlist")
            button = Factory.BigButton(text=f"{visit.when(slot.start_at)}\n{left}")
            button.slot_id = slot.id  # the tour and tests find a slot's button by its id
            button.bind(on_release=lambda _b, s=slot.id:
                        self.app.do(self.visit.booking.choose_slot, s))
            box.add_widget(button)

    def _confirmation(self, box: Any) -> None:
        """Say what will be booked (or cancelled) and ask for a plain yes or no."""
        visit = self.visit
        slot, booking = visit.pending_slot(), visit.pending_cancel()
        if slot is not None and visit.event is not None:
            full = slot.seats_left <= 0
            self.heading = tr._("Join the waitlist?") if full else tr._("Book this time?")
            title = visit.event_title(visit.event)
            when = visit.when_where(slot.start_at, visit.event.location)
            about = visit.event_description(visit.event)
            if about:
                when += "\n" + about
            yes = tr._("Yes, join the waitlist") if full else tr._("Yes, book it")
            no = tr._("Choose another time")
        elif booking is not None:
            self.heading = tr._("Cancel this booking?")
            title, when = visit.booking_summary(booking)
            yes, no = tr._("Yes, cancel it"), tr._("No, keep it")
        else:  # what was waiting is gone (a new catalog): back to the list
            visit.keep()
            self.refresh()
            return
        box.add_widget(Factory.Lead(text=f"[b]{escape_markup(title)}[/b]\n"
                                         f"{escape_markup(when)}", markup=True))
        confirm = Factory.BigButton(text=yes)
        confirm.bind(on_release=lambda _b: self.app.do(self.visit.booking.confirm))
        keep = Factory.SecondaryButton(text=no)
        keep.bind(on_release=lambda _b: self.app.do(self.visit.booking.keep))
        box.add_widget(confirm)
        box.add_widget(keep)
        self.confirm_button, self.keep_button = confirm, keep

    def _add_booking(self, box: Any, booking: Any) -> None:
        status = tr._("Waitlist") if booking.status == "waitlisted" else tr._("Booked")
        title, when = self.visit.booking_summary(booking)
        box.add_widget(Factory.KLabel(text=f"[b]{status}[/b]: {escape_markup(title)}\n"
                                           f"{escape_markup(when)}", markup=True))
        row = Factory.BoxLayout(size_hint_y=None, height=self.app.scale * 150,
                                spacing=self.app.scale * 24)
        cancel = Factory.SecondaryButton(text=tr._("Cancel it"))
        cancel.bind(on_release=lambda _b, b=booking.booking_id:
                    self.app.do(self.visit.booking.choose_cancel, b))
        move = Factory.SecondaryButton(text=tr._("Change the time"))
        move.bind(on_release=lambda _b, b=booking.booking_id:
                  self.app.do(self.visit.booking.start_moving, b))
        row.add_widget(cancel)
        row.add_widget(move)
        box.add_widget(row)

    def _event(self, event_id: str) -> None:
        self.visit.choose_event(event_id)
        self.app.sync()


class QrScreen(KioskScreen):
    """The advocate-link, contact and ticket QR codes, each with what scanning does."""

    kv_name = "qr"
    offline = BooleanProperty(False)

    def refresh(self) -> None:
        """Draw the codes (from shared.qr PNGs) with their captions."""
        from shared.qr import qr_png  # qrcode and Pillow load only when codes are shown

        box = self.ids.codes
        box.clear_widgets()
        codes = self.visit.qr_codes()
        self.offline = not codes
        booked = self.visit.booked
        if booked is not None:
            box.add_widget(Factory.BookingSummary(text=self._summary(booked)))
        name = self.visit.advocate.advocate.name if self.visit.advocate else ""
        for code in codes:
            texture = CoreImage(io.BytesIO(qr_png(code.content, size_px=600)), ext="png").texture
            texture.mag_filter = "nearest"
            card = Factory.QrCard()
            card.caption = tr._(code.caption).format(name=name)
            card.kind = code.kind
            image = Image(texture=texture, size_hint=(None, None), fit_mode="contain")
            image.size = (self.app.scale * 420, self.app.scale * 420)
            card.ids.holder.add_widget(image)
            box.add_widget(card)

    def _summary(self, booked: Any) -> str:
        """What, when and where of the booking just made (or the waitlist's place)."""
        title, when = self.visit.booking_summary(booked)
        head = tr._("You are on the waitlist, number {n}").format(
            n=booked.waitlist_position or "") if booked.status == "waitlisted" \
            else tr._("You are booked")
        return f"[b]{escape_markup(head)}[/b]\n[b]{escape_markup(title)}[/b]\n" \
               f"{escape_markup(when)}"
