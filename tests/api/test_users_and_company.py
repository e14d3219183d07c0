"""Users and company on both surfaces: roles, settings merge, and tenants that never see each other."""

from __future__ import annotations

import httpx2

from tests.conftest import Account, register


async def _add_user(
    client: httpx2.AsyncClient, admin: Account, email: str, role: str = "user"
) -> tuple[str, dict[str, str]]:
    created = await client.post(
        "/api/users",
        headers=admin.headers,
        json={"username": email, "email": email, "password": "password123", "full_name": "John Doe", "role": role},
    )
    assert created.status_code == 201, created.text
    token = (await client.post("/token", json={"username": email, "password": "password123"})).json()["access_token"]
    return created.json()["id"], {"Authorization": f"Bearer {token}"}


async def test_admin_manages_users_with_spec_bodies(client: httpx2.AsyncClient, owner: Account) -> None:
    created = await client.post(
        "/api/users",
        headers=owner.headers,
        json={
            "username": "user@example.com",
            "email": "user@example.com",
            "password": "password",
            "full_name": "John Doe",
            "role": "user",
        },
    )
    assert created.status_code == 201, created.text
    user = created.json()
    assert user["id"].startswith("user-")
    assert user["company_id"] == owner.company_id.replace("cmp_", "company-")
    assert {k: user[k] for k in ("username", "email", "full_name", "role", "is_active")} == {
        "username": "user@example.com",
        "email": "user@example.com",
        "full_name": "John Doe",
        "role": "user",
        "is_active": True,
    }

    updated = await client.put(
        f"/api/users/{user['id']}",
        headers=owner.headers,
        json={"full_name": "John Smith", "role": "manager", "is_active": True},
    )
    assert updated.status_code == 200
    assert updated.json()["full_name"] == "John Smith" and updated.json()["role"] == "manager"
    # The canonical spelling of the id works too.
    canonical = user["id"].replace("user-", "usr_")
    assert (await client.get(f"/api/users/{canonical}", headers=owner.headers)).json()["full_name"] == "John Smith"

    listed = (await client.get("/api/users", headers=owner.headers, params={"role": "manager"})).json()
    assert listed["total"] == 1 and listed["page"] == 1 and listed["limit"] == 20
    assert [u["id"] for u in listed["items"]] == [user["id"]]

    deleted = await client.delete(f"/api/users/{user['id']}", headers=owner.headers)
    assert deleted.json() == {"success": True, "message": "User deleted successfully"}
    assert (await client.get(f"/api/users/{user['id']}", headers=owner.headers)).status_code == 404


async def test_user_list_filters_and_pages(client: httpx2.AsyncClient, owner: Account) -> None:
    for index in range(5):
        await _add_user(client, owner, f"u{index}@example.com")
    inactive_id, _ = await _add_user(client, owner, "gone@example.com")
    await client.put(f"/api/users/{inactive_id}", headers=owner.headers, json={"is_active": False})

    page = (
        await client.get("/api/users", headers=owner.headers, params={"limit": 2, "page": 2, "is_active": True})
    ).json()
    assert page["total"] == 6  # owner + 5 active
    assert page["page"] == 2 and page["limit"] == 2 and len(page["items"]) == 2
    inactive = (await client.get("/api/users", headers=owner.headers, params={"is_active": False})).json()
    assert [u["id"] for u in inactive["items"]] == [inactive_id]
    too_big = await client.get("/api/users", headers=owner.headers, params={"limit": 1000})
    assert too_big.status_code == 422
    assert too_big.json()["detail"][0]["field"] == "limit"


async def test_only_admins_manage_users(client: httpx2.AsyncClient, owner: Account) -> None:
    _, manager = await _add_user(client, owner, "manager@example.com", role="manager")
    _, plain = await _add_user(client, owner, "plain@example.com")
    body = {"email": "new@example.com", "password": "password123"}
    for headers in (manager, plain):
        assert (await client.post("/api/users", headers=headers, json=body)).status_code == 403
        assert (await client.get("/api/users", headers=headers)).status_code == 403
        assert (await client.get("/api/users/me", headers=headers)).status_code == 200
    forbidden = await client.post("/api/users", headers=plain, json=body)
    assert forbidden.json() == {"detail": "You do not have permission to access this resource"}
    # The company: managers may edit it, plain users may only read it.
    assert (
        await client.patch("/v1/companies/current", headers=manager, json={"industry": "Retail"})
    ).status_code == 200
    denied = await client.patch("/v1/companies/current", headers=plain, json={"industry": "Nope"})
    assert denied.status_code == 403 and denied.json()["error"] == "permission_error"
    assert (await client.get("/v1/companies/current", headers=plain)).json()["industry"] == "Retail"


async def test_admin_cannot_lock_themselves_out(client: httpx2.AsyncClient, owner: Account) -> None:
    me = owner.user_id
    assert (await client.delete(f"/api/users/{me}", headers=owner.headers)).status_code == 409
    demote = await client.put(f"/api/users/{me}", headers=owner.headers, json={"role": "user"})
    assert demote.status_code == 422 and demote.json()["detail"][0]["field"] == "role"


async def test_duplicate_user_email_is_a_conflict(client: httpx2.AsyncClient, owner: Account) -> None:
    response = await client.post(
        "/api/users", headers=owner.headers, json={"email": owner.email, "password": "password123"}
    )
    assert response.status_code == 409


async def test_other_companies_are_invisible(client: httpx2.AsyncClient, owner: Account) -> None:
    other = await register(client, company="Globex")
    other_user_id, _ = await _add_user(client, other, "globex-staff@example.com")
    for method in ("GET", "PUT", "DELETE"):
        response = await client.request(
            method,
            f"/api/users/{other_user_id}",
            headers=owner.headers,
            json={"full_name": "x"} if method == "PUT" else None,
        )
        assert response.status_code == 404, method
        assert response.json() == {"detail": "User not found"}
    listed = (await client.get("/api/users", headers=owner.headers)).json()
    assert [u["id"] for u in listed["items"]] == [owner.user_id.replace("usr_", "user-")]
    assert (await client.get("/v1/companies/current", headers=owner.headers)).json()["name"] == "Acme Inc"
    assert (await client.get("/api/users/user-doesnotexist", headers=owner.headers)).status_code == 404


async def test_user_settings_merge(client: httpx2.AsyncClient, owner: Account) -> None:
    first = await client.patch(
        "/v1/users/me",
        headers=owner.headers,
        json={"settings": {"notifications": {"email": True, "push": False}, "theme": "light"}},
    )
    assert first.status_code == 200
    second = await client.patch(
        "/v1/users/me",
        headers=owner.headers,
        json={"name": "John Smith", "settings": {"notifications": {"email": False}}},
    )
    body = second.json()
    assert body["name"] == "John Smith"
    assert body["settings"] == {"notifications": {"email": False, "push": False}, "theme": "light"}
    unknown_field = await client.patch("/v1/users/me", headers=owner.headers, json={"role": "admin"})
    assert unknown_field.status_code == 422 and "role" in unknown_field.json()["details"]


async def test_company_update_merges_settings_and_validates(client: httpx2.AsyncClient, owner: Account) -> None:
    await client.patch(
        "/v1/companies/current",
        headers=owner.headers,
        json={"settings": {"branding": {"primary_color": "#336699", "secondary_color": "#66AACC"}}},
    )
    response = await client.patch(
        "/v1/companies/current",
        headers=owner.headers,
        json={
            "name": "Acme Corporation",
            "website": "https://acmecorp.example.com",
            "settings": {"branding": {"primary_color": "#003366"}},
        },
    )
    assert response.status_code == 200
    company = response.json()
    assert company["name"] == "Acme Corporation"
    assert company["website"] == "https://acmecorp.example.com/"
    assert company["settings"] == {"branding": {"primary_color": "#003366", "secondary_color": "#66AACC"}}

    bad = await client.patch(
        "/v1/companies/current", headers=owner.headers, json={"website": "not a url", "timezone": "Mars/Olympus"}
    )
    assert bad.status_code == 422
    assert set(bad.json()["details"]) == {"website", "timezone"}
    # Nothing of the rejected request was written.
    assert (await client.get("/v1/companies/current", headers=owner.headers)).json()["timezone"] == "UTC"
