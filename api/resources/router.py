"""``/v1``: spec/api-v1-resources.md."""

from fastapi import APIRouter

from api.resources import auth, companies, users

router = APIRouter(prefix="/v1")
for module in (auth, users, companies):
    router.include_router(module.router)
