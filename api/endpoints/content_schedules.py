"""``/api/content-generation`` schedules (spec/api-v1-workflow-endpoints.md: Schedule Content Generation, Get
Content Schedules), each backed by a Temporal Schedule, plus reading, editing and deleting one schedule.

``POST /schedule`` without an ``id`` always creates a new schedule (two schedules may share a type and a time:
different topics, different channels); with the ``id`` of an existing one it replaces that one in place.
"""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from api.deps import CurrentUser, OptionalTemporal, SessionDep, SettingsDep, TemporalDep
from schemas.common import Success
from schemas.content_schedules import (
    ContentScheduleCreate,
    ContentScheduleEndpointsItem,
    ContentScheduleEndpointsPublic,
    ContentSchedulesEndpointsPublic,
    ContentScheduleUpdate,
    ScheduleSaved,
)
from schemas.ids import EndpointsId, to_api_id
from services import content_schedules
from services.content_schedules import ScheduleView

router = APIRouter(prefix="/content-generation", tags=["content-generation"])


def _item(view: ScheduleView) -> ContentScheduleEndpointsItem:
    item = ContentScheduleEndpointsItem.model_validate(view.schedule)
    item.next_run_times = view.next_run_times
    return item


@router.post("/schedule", responses={201: {"description": "created"}, 200: {"description": "updated in place"}})
async def save_schedule(
    body: ContentScheduleCreate,
    response: Response,
    user: CurrentUser,
    session: SessionDep,
    temporal: TemporalDep,
    settings: SettingsDep,
) -> ScheduleSaved:
    """Schedule content generation (admins and managers); with an existing `id`, update that schedule."""
    schedule, created = await content_schedules.save(session, temporal, settings, user, body)
    response.status_code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
    return ScheduleSaved(
        message=f"Content generation schedule {'created' if created else 'updated'} successfully",
        schedule_id=schedule.id,
    )


@router.get("/schedules")
async def list_schedules(
    user: CurrentUser, session: SessionDep, temporal: OptionalTemporal
) -> ContentSchedulesEndpointsPublic:
    """Your company's content schedules with the next run times Temporal reports."""
    views = await content_schedules.list_schedules(session, temporal, user)
    return ContentSchedulesEndpointsPublic(
        message="Content generation schedules retrieved successfully", schedules=[_item(view) for view in views]
    )


@router.get("/schedules/{schedule_id}")
async def read_schedule(
    schedule_id: EndpointsId, user: CurrentUser, session: SessionDep, temporal: OptionalTemporal
) -> ContentScheduleEndpointsPublic:
    """One content schedule with its next run times."""
    view = await content_schedules.get(session, temporal, user, schedule_id)
    return ContentScheduleEndpointsPublic(
        message=f"Content generation schedule {to_api_id(view.schedule.id)} retrieved successfully",
        schedule=_item(view),
    )


@router.put("/schedules/{schedule_id}")
async def update_schedule(
    schedule_id: EndpointsId,
    body: ContentScheduleUpdate,
    user: CurrentUser,
    session: SessionDep,
    temporal: TemporalDep,
    settings: SettingsDep,
) -> ContentScheduleEndpointsPublic:
    """Change the fields sent (others stay), in place; `active: false` pauses, `true` resumes."""
    schedule = await content_schedules.update(session, temporal, settings, user, schedule_id, body)
    view = await content_schedules.get(session, temporal, user, schedule.id)
    return ContentScheduleEndpointsPublic(
        message=f"Content generation schedule {to_api_id(schedule.id)} updated successfully", schedule=_item(view)
    )


@router.delete("/schedules/{schedule_id}")
async def delete_schedule(
    schedule_id: EndpointsId, user: CurrentUser, session: SessionDep, temporal: TemporalDep
) -> Success:
    """Delete a content schedule and its Temporal Schedule; what it already wrote stays."""
    await content_schedules.delete(session, temporal, user, schedule_id)
    return Success(message=f"Content generation schedule {to_api_id(schedule_id)} deleted successfully")
