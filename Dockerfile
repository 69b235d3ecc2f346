# Skalds, for docker-compose.yml's controller and node (and your own deployments): the package and its
# console script, nothing else. Run as `skalds controller ...` or `skalds node ...`.
FROM python:3.11-slim
WORKDIR /srv/skalds
COPY pyproject.toml README.md ./
COPY skalds ./skalds
RUN pip install --no-cache-dir . && useradd --system skalds && mkdir -p /srv/skalds/data \
    && chown skalds /srv/skalds/data
USER skalds
ENTRYPOINT []
# `skalds up` keeps its tasks in a SQLite file; mount a volume at /srv/skalds/data to keep them
CMD ["skalds", "up", "--host", "0.0.0.0", "--data-dir", "/srv/skalds/data"]
