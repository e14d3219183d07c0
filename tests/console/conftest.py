"""Console tests: a cookie-keeping client on https (the session cookies are Secure outside development)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx2
import pytest
from fastapi import FastAPI

CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
async def browser(app: FastAPI) -> AsyncIterator[httpx2.AsyncClient]:
    async with httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url="https://testserver") as http:
        yield http


def csrf_of(page: httpx2.Response) -> str:
    found = CSRF_FIELD.search(page.text)
    assert found, "the page has no CSRF field"
    return found.group(1)


async def sign_up(browser: httpx2.AsyncClient, email: str = "owner@example.com", company: str = "Acme Inc") -> None:
    form = await browser.get("/app/signup")
    answer = await browser.post(
        "/app/signup",
        data={
            "csrf_token": csrf_of(form),
            "company_name": company,
            "name": "Olive Owner",
            "email": email,
            "password": "correct horse battery",
        },
    )
    assert answer.status_code == 303, answer.text
