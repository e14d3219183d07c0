"""The storage behind every rate limit, from ``BAS_RATE_LIMIT_STORAGE`` (a ``limits`` storage URI).

``limits`` reaches Redis through ``coredis`` unless told otherwise; the project depends on ``redis`` (redis-py)
instead, so a ``redis://`` URI is opened with that client. Without this, ``redis://`` failed at startup with
"'coredis' prerequisite not available".
"""

from __future__ import annotations

from limits.aio.storage import Storage
from limits.storage import storage_from_string


def async_storage(uri: str) -> Storage:
    """The asynchronous storage for ``uri``: ``memory://``, ``redis://host:port`` (also ``rediss://``, cluster
    and sentinel URIs), or anything else ``limits`` knows, with or without its ``async+`` prefix."""
    uri = uri if uri.startswith("async+") else f"async+{uri}"
    options = {"implementation": "redispy"} if uri.startswith("async+redis") else {}
    storage = storage_from_string(uri, **options)
    assert isinstance(storage, Storage)  # an ``async+`` URI always names an asynchronous storage
    return storage
