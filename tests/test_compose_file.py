"""Static checks on temporal-dev.yml, so a broken Compose file is caught without Docker."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

# ruamel.yaml rather than PyYAML: it is a dependency of check-jsonschema, which the test
# extras already require, so this adds nothing to install.
from ruamel.yaml import YAML

COMPOSE_FILE = Path(__file__).resolve().parent.parent / "temporal-dev.yml"
# The executable installed next to the running interpreter, so the test uses the venv's copy
# even when the venv is not activated.
CHECK_JSONSCHEMA = Path(sys.executable).parent / "check-jsonschema"
APP_SERVICES = ("migrate", "api", "worker")


def load_compose(path: Path) -> dict[str, Any]:
    data = YAML(typ="safe").load(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict), f"{path} is not a YAML mapping"
    return data


def dependency_names(service: Mapping[str, Any]) -> list[str]:
    """Names in ``depends_on``, which Compose accepts as a list or as a mapping."""
    # Iterating either form yields the service names (a mapping's keys).
    return list(service.get("depends_on") or [])


def undefined_dependencies(compose: Mapping[str, Any]) -> list[str]:
    """``service -> dependency`` for every dependency that names no defined service."""
    services: Mapping[str, Any] = compose.get("services") or {}
    return [
        f"{name} -> {dependency}"
        for name, service in services.items()
        for dependency in dependency_names(service or {})
        if dependency not in services
    ]


def is_pinned(image: str) -> bool:
    """True for ``name:tag`` (tag not ``latest``) or a digest reference."""
    if "@" in image:
        return True
    # A ':' before the last '/' belongs to a registry port (host:5000/name), not a tag.
    name = image.rsplit("/", 1)[-1]
    _, sep, tag = name.partition(":")
    return bool(sep) and bool(tag) and tag != "latest"


def test_compose_file_matches_compose_spec() -> None:
    # The compose-spec schema ships inside check-jsonschema, so this needs no network.
    result = subprocess.run(
        [
            str(CHECK_JSONSCHEMA),
            "--builtin-schema",
            "vendor.compose-spec",
            str(COMPOSE_FILE),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_dependency_is_a_defined_service() -> None:
    assert undefined_dependencies(load_compose(COMPOSE_FILE)) == []


def test_app_services_share_one_environment() -> None:
    services = load_compose(COMPOSE_FILE)["services"]
    environments = [services[name].get("environment") for name in APP_SERVICES]
    assert environments[0], "migrate/api/worker must set the BAS_* environment"
    assert all(env == environments[0] for env in environments), (
        "migrate, api and worker must use the same environment (the &bas-env anchor)"
    )


def test_images_are_pinned() -> None:
    services = load_compose(COMPOSE_FILE)["services"]
    unpinned = {
        name: service["image"]
        for name, service in services.items()
        if "image" in service and not is_pinned(service["image"])
    }
    assert unpinned == {}


def test_dependency_check_reports_a_missing_service(tmp_path: Path) -> None:
    # Proves the checker can fail: a dependency on a service that is not defined.
    compose = load_compose(COMPOSE_FILE)
    compose["services"]["api"]["depends_on"] = {
        **compose["services"]["api"]["depends_on"],
        "no-such-service": {"condition": "service_started"},
    }
    compose["services"]["worker"]["depends_on"] = ["also-missing"]
    broken = tmp_path / "temporal-dev.yml"
    with broken.open("w", encoding="utf-8") as handle:
        YAML(typ="safe").dump(compose, handle)

    assert sorted(undefined_dependencies(load_compose(broken))) == [
        "api -> no-such-service",
        "worker -> also-missing",
    ]


def test_image_pin_check() -> None:
    assert is_pinned("temporalio/ui:2.34.0")
    assert is_pinned("registry.local:5000/team/app@sha256:" + "0" * 64)
    assert not is_pinned("postgres")
    assert not is_pinned("postgres:latest")
    assert not is_pinned("registry.local:5000/team/app")
