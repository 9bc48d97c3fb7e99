# One small image for every odoofleet process: serve, relay, project, work, migrate.
#   BASE_IMAGE  the Python 3.11 image to build on (default: the official slim one).
#   WHEELHOUSE  a directory of the build context holding every wheel the install needs, for
#               builds that cannot reach a package index: on a machine that can,
#               `pip wheel -w wheelhouse . 'setuptools>=68' wheel`, then
#               `docker build --build-arg WHEELHOUSE=wheelhouse .`. Empty: from the index.
ARG BASE_IMAGE=python:3.11-slim

FROM ${BASE_IMAGE} AS build
ARG WHEELHOUSE=
WORKDIR /src
COPY . .
RUN if [ -n "$WHEELHOUSE" ]; then \
      pip wheel --no-cache-dir --no-index --find-links "$WHEELHOUSE" --wheel-dir /wheels . ; \
    else \
      pip wheel --no-cache-dir --wheel-dir /wheels . ; \
    fi

FROM ${BASE_IMAGE}
RUN useradd --system --create-home --uid 10001 odoofleet
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index /wheels/*.whl && rm -rf /wheels
USER odoofleet
WORKDIR /home/odoofleet
ENV ODOOFLEET_LOG_FORMAT=json PYTHONUNBUFFERED=1
EXPOSE 8000
ENTRYPOINT ["odoofleet"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
