"""Shared by the lead API tests: seeding rows other features write, and reading what reached Temporal."""

from __future__ import annotations

from typing import Any

import httpx2
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from core.ids import new_id
from db.models import DomainEvent, IdempotencyRecord, WorkflowConfig, WorkflowRun
from schemas.lead_follow_up import LeadEventSignal
from services.lead_follow_up import workflow_id_for
from tests.conftest import Account


def sessions(app: FastAPI) -> async_sessionmaker[AsyncSession]:
    factory: async_sessionmaker[AsyncSession] = app.state.sessions
    return factory


async def add_lead_config(
    app: FastAPI, company_id: str, *, lead_source: list[str] | None = None, tags: list[str] | None = None
) -> str:
    """An active lead-nurturing config whose first message waits ten hours, so its runs stay live."""
    config = WorkflowConfig(
        id=new_id("wf"),
        company_id=company_id,
        name="New Lead Follow-up",
        workflow_type="lead_nurturing",
        active=True,
        triggers={"lead_source": lead_source or [], "tags": tags or []},
        actions={
            "initial_delay_minutes": 600,
            "message_template": "new_lead_template",
            "channel": "email",
            "follow_up": [{"delay_hours": 24, "message_template": "follow_up_1"}],
        },
        templates={
            "new_lead_template": "Hello {{name}}, thank you for your interest in our services...",
            "follow_up_1": "Hello {{name}}, I wanted to follow up on our previous message...",
        },
    )
    async with sessions(app)() as session:
        session.add(config)
        await session.commit()
    return config.id


async def run_count(app: FastAPI, lead_id: str) -> int:
    async with sessions(app)() as session:
        return await session.scalar(select(func.count()).where(WorkflowRun.trigger_id == lead_id)) or 0


async def event_types(app: FastAPI, entity_id: str) -> list[str]:
    async with sessions(app)() as session:
        rows = await session.scalars(
            select(DomainEvent.type).where(DomainEvent.entity_id == entity_id).order_by(DomainEvent.created_at)
        )
        return list(rows)


async def stored_keys(app: FastAPI, company_id: str) -> list[str]:
    async with sessions(app)() as session:
        rows = await session.scalars(
            select(IdempotencyRecord.key)
            .where(IdempotencyRecord.company_id == company_id)
            .order_by(IdempotencyRecord.key)
        )
        return list(rows)


async def signals(temporal: Client, lead_id: str, config_id: str) -> list[LeadEventSignal]:
    """Every ``lead_event`` signal in the sequence's history, decoded."""
    handle = temporal.get_workflow_handle(workflow_id_for(lead_id, config_id))
    received = []
    async for event in handle.fetch_history_events():
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
            attributes = event.workflow_execution_signaled_event_attributes
            assert attributes.signal_name == "lead_event"
            [signal] = pydantic_data_converter.payload_converter.from_payloads(
                attributes.input.payloads, [LeadEventSignal]
            )
            received.append(signal)
    return received


async def create_lead(
    client: httpx2.AsyncClient, account: Account, body: dict[str, Any], path: str = "/v1/leads"
) -> dict[str, Any]:
    response = await client.post(path, headers=account.headers, json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created
