from __future__ import annotations

import logging


def configure_logging(level: str = "INFO") -> None:
    """One line per event, with the logger name, so an operator can grep at 3 a.m."""
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        force=True,
    )
    # The SDK's own worker logs are useful; its per-poll chatter is not.
    logging.getLogger("temporalio").setLevel(max(logging.INFO, logging.getLogger().level))
    # httpx2 logs every request's full URL at INFO; webhook and provider URLs may carry tokens in them.
    logging.getLogger("httpx2").setLevel(max(logging.WARNING, logging.getLogger().level))
