FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY fleetwatch fleetwatch
COPY collectors collectors
COPY models models
COPY dashboards dashboards
COPY benchmarks benchmarks
COPY alembic alembic
RUN pip install --no-cache-dir -e .
USER nobody
ENTRYPOINT []
