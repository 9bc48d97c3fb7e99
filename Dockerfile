# One small image for every odoofleet process: serve, relay, project, work, migrate.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY events events
COPY commands commands
COPY projections projections
COPY api api
COPY workers workers
COPY odoofleet odoofleet
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
RUN useradd --system --create-home --uid 10001 odoofleet
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
USER odoofleet
WORKDIR /home/odoofleet
ENV ODOOFLEET_LOG_FORMAT=json PYTHONUNBUFFERED=1
EXPOSE 8000
ENTRYPOINT ["odoofleet"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
