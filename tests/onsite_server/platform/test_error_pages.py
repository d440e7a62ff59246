"""HTML error pages render in the dashboard's own layout, even for requests refused early."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.mark.sqlite_only
def test_untrusted_host_gets_the_real_400_page(client: Any,
                                               caplog: pytest.LogCaptureFixture) -> None:
    """A forged Host is refused before routing; its page still renders (no AttributeError)."""
    resp = client.get("/dashboard/", headers={"Host": "evil.example", "Accept": "text/html"})
    assert resp.status_code == 400
    page = resp.get_data(as_text=True)
    # The layout, not the bare fallback: its stylesheet and the page's own heading.
    assert '/static/app.css' in page and "400" in page
    assert "does not answer to the address the request was sent to" in page
    assert "<strong>Host</strong>" in page  # the refusal names the header
    assert "evil.example" not in page  # links are paths, never built from the refused Host
    assert "did not render" not in caplog.text
