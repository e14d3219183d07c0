"""``/v1``: spec/api-v1-resources.md."""

from fastapi import APIRouter

from api.errors import RESOURCES_ERROR_RESPONSES
from api.resources import (
    analytics,
    auth,
    companies,
    content,
    content_metrics,
    customers,
    deliveries,
    leads,
    reviews,
    users,
    workflow_configs,
    workflow_runs,
)

router = APIRouter(prefix="/v1", responses=RESOURCES_ERROR_RESPONSES)
for sub_router in (
    auth.router,
    users.router,
    companies.router,
    leads.router,
    customers.customers_router,
    customers.sales_router,
    reviews.router,
    reviews.referrals_router,
    content.router,
    content_metrics.router,
    deliveries.router,
    workflow_configs.router,
    workflow_runs.router,
    analytics.router,
):
    router.include_router(sub_router)
