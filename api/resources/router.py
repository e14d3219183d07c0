"""``/v1``: spec/api-v1-resources.md."""

from fastapi import APIRouter

from api.resources import analytics, auth, companies, leads, users, workflow_configs, workflow_runs

router = APIRouter(prefix="/v1")
for module in (auth, users, companies, leads, workflow_configs, workflow_runs, analytics):
    router.include_router(module.router)
