"""The admin page over plain HTTP: a logged-in client, its CSRF token, and the elements of a page."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import httpx

from tests.admin.test_admin_api import TOKEN

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def logged_in(base: str, token: str = TOKEN) -> tuple[httpx.Client, str]:
    """A client with the session of the admin ``token`` names (the test token's: ``web:admin``),
    and the CSRF token its forms carry."""
    client = httpx.Client(base_url=base)
    login = client.post("/admin/login", data={"token": token})
    assert login.status_code == 303, login.text
    found = CSRF.search(client.get("/admin").text)
    assert found is not None
    return client, found.group(1)


class _Elements(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.by_id: dict[str, dict[str, str]] = {}
        self.text: dict[str, str] = {}
        self._open: list[str] = []
        self._select = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {k: v or "" for k, v in attrs}
        found["tag"] = tag
        if tag == "select":
            self._select = found.get("id", "")
            found["value"] = ""
        elif tag == "option" and "selected" in found and self._select in self.by_id:
            self.by_id[self._select]["value"] = found.get("value", "")
        if "id" in found:
            self.by_id[found["id"]] = found
            self.text[found["id"]] = ""
            if tag not in ("input", "option"):
                self._open.append(found["id"])

    def handle_endtag(self, tag: str) -> None:
        if self._open and self.by_id[self._open[-1]]["tag"] == tag:
            self._open.pop()

    def handle_data(self, data: str) -> None:
        for element in self._open:
            self.text[element] += data


def elements(html: str) -> _Elements:
    """Every element with an id: its attributes (``by_id``) and its text (``text``)."""
    parser = _Elements()
    parser.feed(html)
    return parser
