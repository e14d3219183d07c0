"""``/token`` and ``/api``: spec/api-v1-workflow-endpoints.md."""

from fastapi import APIRouter

from api.endpoints import system, token, users

token_router = token.router
router = APIRouter(prefix="/api")
for module in (users, system):
    router.include_router(module.router)
