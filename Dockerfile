# Image for the api, worker and migrate processes (see temporal-dev.yml).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore

WORKDIR /app
COPY . .
RUN pip install --no-cache-dir .

# Run unprivileged; only the data directory (the SQLite default when no database URL is set)
# needs to be writable by the app.
RUN useradd --create-home --uid 10001 bas \
    && mkdir -p /app/data \
    && chown bas:bas /app/data
USER bas

EXPOSE 8000
CMD ["bas", "api", "--host", "0.0.0.0", "--port", "8000"]
