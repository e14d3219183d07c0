from __future__ import annotations

import pytest
from pydantic import ValidationError

from core.config import DEV_JWT_SECRET, Settings
from core.ids import new_id
from schemas.ids import from_api_id, to_api_id
from schemas.temporal import QueueKind, sibling_queue


def test_default_jwt_secret_is_refused_in_production() -> None:
    with pytest.raises(ValidationError, match="BAS_JWT_SECRET"):
        Settings(environment="production")
    with pytest.raises(ValidationError, match="BAS_JWT_SECRET"):
        Settings(environment="production", jwt_secret="short")
    assert Settings(environment="production", jwt_secret="x" * 40).jwt_secret.get_secret_value() == "x" * 40
    assert Settings(environment="development").jwt_secret.get_secret_value() == DEV_JWT_SECRET


def test_settings_read_the_bas_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BAS_DATABASE_URL", "postgresql://u:p@db:5432/bas")
    monkeypatch.setenv("BAS_TASK_QUEUE_PREFIX", "acme")
    settings = Settings()
    assert settings.async_database_url == "postgresql+psycopg://u:p@db:5432/bas"
    assert settings.sync_database_url == "postgresql+psycopg://u:p@db:5432/bas"
    assert settings.task_queue(QueueKind.MAIN) == "acme-main"


def test_sqlite_is_the_default_database(tmp_path: object) -> None:
    settings = Settings(data_dir="somewhere")
    assert settings.sqlalchemy_url.startswith("sqlite:///") and settings.sqlalchemy_url.endswith("somewhere/bas.db")
    assert settings.async_database_url.startswith("sqlite+aiosqlite:///")


def test_ids_are_prefixed_and_unique() -> None:
    ids = {new_id("lead") for _ in range(1000)}
    assert len(ids) == 1000
    assert all(i.startswith("lead_") and len(i) == 21 for i in ids)
    with pytest.raises(ValueError):
        new_id("nope")


@pytest.mark.parametrize(
    ("canonical", "presented"),
    [
        ("usr_abc123", "user-abc123"),
        ("cmp_x", "company-x"),
        ("lead_q1", "lead-q1"),
        ("ref_z", "referral-z"),
        ("refuse_z", "referral-use-z"),
    ],
)
def test_endpoints_surface_spelling_round_trips(canonical: str, presented: str) -> None:
    assert to_api_id(canonical) == presented
    assert from_api_id(presented) == canonical
    assert from_api_id(canonical) == canonical  # either spelling is accepted back
    assert to_api_id("not-ours") == "not-ours"


def test_sibling_queue_keeps_the_deployment_prefix() -> None:
    assert sibling_queue("bas-main", QueueKind.MAIN) == "bas-main"
    assert sibling_queue("test-1a2b-main", QueueKind.MAIN) == "test-1a2b-main"
