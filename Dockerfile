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
# The detector's numba kernel, compiled once here into a cache the unprivileged user can use.
ENV NUMBA_CACHE_DIR=/var/cache/numba
RUN mkdir -p "$NUMBA_CACHE_DIR" \
    && python -c "import numpy as np; from models import detect; detect(np.zeros((1, 2)))" \
    && chown -R nobody "$NUMBA_CACHE_DIR"
USER nobody
ENTRYPOINT []
