# Skalds, for docker-compose.yml's controller and node (and your own deployments): the package and its
# console script, nothing else. Run as `skalds controller ...` or `skalds node ...`.
FROM python:3.11-slim
WORKDIR /srv/skalds
COPY pyproject.toml README.md ./
COPY skalds ./skalds
RUN pip install --no-cache-dir . && useradd --system skalds
USER skalds
ENTRYPOINT []
CMD ["skalds", "up", "--host", "0.0.0.0"]
