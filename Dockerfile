# One image for every leadrelay role: receiver, worker, beat, migrate.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    LEADRELAY_DATA_DIR=/var/lib/leadrelay
WORKDIR /app
COPY pyproject.toml README.md alembic.ini ./
# exact versions: requirements/lock.txt (refresh with bash .ci/lock), the same pins CI tests
COPY requirements/lock.txt ./requirements/lock.txt
COPY leadrelay ./leadrelay
COPY worker ./worker
COPY adapters ./adapters
COPY migrations ./migrations
RUN pip install -c requirements/lock.txt . \
    && useradd --system --uid 10001 leadrelay \
    && install -d -o leadrelay -g leadrelay /var/lib/leadrelay
USER leadrelay
EXPOSE 8000
CMD ["leadrelay", "serve", "--host", "0.0.0.0", "--port", "8000"]
