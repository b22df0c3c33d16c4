# syntax=docker/dockerfile:1.7
# check=skip=JSONArgsRecommended
ARG PYTHON_VERSION=3.12
FROM --platform=$BUILDPLATFORM python:${PYTHON_VERSION}-slim AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /app
RUN --mount=type=cache,target=/root/.cache/pip \
    --mount=type=bind,source=requirements.txt,target=requirements.txt \
    python -m venv /venv && /venv/bin/pip install -r requirements.txt
COPY --link --chmod=0755 <<-"EOT" /usr/local/bin/entrypoint
	#!/bin/sh
	exec "$@"
	EOT
RUN <<EOF
set -e
/venv/bin/python -c "import django; print(django.get_version())"
EOF

FROM python:${PYTHON_VERSION}-slim
COPY --from=builder --chown=app:app /venv /venv
COPY --parents --exclude=*.pyc --exclude=tests/ src/ ./
ENV PATH="/venv/bin:$PATH" DJANGO_SETTINGS_MODULE=site.settings
HEALTHCHECK --interval=30s --timeout=3s CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://localhost:8000/')"]
USER 1000:1000
STOPSIGNAL SIGTERM
ONBUILD COPY . /app
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
EXPOSE 8000/tcp
CMD gunicorn site.wsgi --bind 0.0.0.0:8000 --workers ${WEB_CONCURRENCY:-2}
