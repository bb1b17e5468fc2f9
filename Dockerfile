# The `reconcile` CLI as a container image, for CI systems that run jobs in containers (see
# examples/gitlab-ci/.gitlab-ci.yml):
#
#   docker build -t connector-reconciler .
#   docker run --rm -v "$PWD:/work" -e AIRWEAVE_API_KEY connector-reconciler plan connectors
#
# Two stages: the wheel is built with the build tools, the runtime image holds only the installed
# package. It runs as an unprivileged user; the entrypoint is `reconcile`, so arguments are its
# sub-command (a CI that runs shell scripts overrides the entrypoint with "").
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 NO_COLOR=1
# git: the CI scripts check out the branch's HEAD and find the repository root of a saved plan
RUN apt-get update \
    && apt-get install -y --no-install-recommends git \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 10001 --shell /usr/sbin/nologin reconcile
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
USER 10001:10001
WORKDIR /work
ENTRYPOINT ["reconcile"]
CMD ["--help"]
