# Partner Panel's production image: one image, four roles (web, worker, beat, flusher; see
# compose.yaml and docs/deploy.md). Build: docker build -t partner-panel .
# Only the runtime lock (requirements/production.txt) is installed, with its hashes.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1
WORKDIR /app
RUN python3 -m venv /opt/venv
COPY requirements/production.txt /tmp/production.txt
RUN /opt/venv/bin/pip install --require-hashes --no-deps -r /tmp/production.txt
COPY . .
# Static files are collected (hashed and compressed for WhiteNoise) at build time. The settings
# refuse to start in production without real secrets, a shared cache and a delivering mail
# backend: the values here satisfy them for this step only (nothing is connected to) and are
# not in the final image's environment.
RUN DEBUG=false SECRET_KEY=collectstatic-only-not-a-secret-0123456789 \
    EVENTS_SIGNING_SECRET=collectstatic-only-not-a-secret-0123456789 \
    CACHE_URL=dbcache://collectstatic_only EMAIL_URL=smtp://collectstatic-only.invalid \
    /opt/venv/bin/python manage.py collectstatic --noinput -v 0 \
 && /opt/venv/bin/python -m compileall -q config partners tracking commissions payouts

FROM ${PYTHON_IMAGE}
RUN groupadd --system --gid 10001 app \
 && useradd --system --uid 10001 --gid app --home-dir /app --shell /usr/sbin/nologin app \
 && mkdir -p /var/lib/partner-panel/spool /var/lib/partner-panel/media /var/lib/partner-panel/beat \
 && chown -R app:app /var/lib/partner-panel
# The settings first, the files last: the classic builder runs every step in a container, and
# on vfs that copies the whole image each time, so a step is cheap only while the image is small.
# COPY ignores USER: the code and the venv stay root's, read-only to the app user.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    DEBUG=false \
    HOST=0.0.0.0 \
    PORT=8000 \
    CLICK_BUFFER=spool \
    CLICK_SPOOL_DIR=/var/lib/partner-panel/spool \
    MEDIA_ROOT=/var/lib/partner-panel/media \
    CELERY_BEAT_SCHEDULE_FILENAME=/var/lib/partner-panel/beat/celerybeat-schedule
WORKDIR /app
USER app
EXPOSE 8000
VOLUME ["/var/lib/partner-panel/spool", "/var/lib/partner-panel/media"]
HEALTHCHECK --interval=30s --timeout=6s --start-period=90s --retries=3 CMD ["python3", "deploy/healthcheck.py"]
# The web role by default; compose.yaml gives the other roles their command.
CMD ["sh", "-c", "exec granian --interface wsgi --host \"$HOST\" --port \"$PORT\" --workers \"${WEB_CONCURRENCY:-2}\" --blocking-threads \"${WEB_THREADS:-2}\" --respawn-failed-workers --no-access-log config.wsgi:application"]
COPY --from=build /opt/venv /opt/venv
COPY --from=build /app /app
