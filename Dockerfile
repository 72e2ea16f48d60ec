# One image for web, worker, beat and the one-shot migrate job (see docker-compose.yml).
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    OPENBLAS_NUM_THREADS=1 \
    DJANGO_DEBUG=false \
    SHADOWLAB_VAR_DIR=/data \
    SHADOWLAB_MEDIA_ROOT=/data/media \
    STATIC_ROOT=/app/staticfiles

WORKDIR /app
RUN useradd --create-home --uid 1000 shadowlab && mkdir -p /data/media && chown -R shadowlab /data

COPY requirements.lock ./
RUN pip install -r requirements.lock

COPY . .
# collectstatic needs settings but no secret worth keeping and no database.
RUN SECRET_KEY=collectstatic-only python manage.py collectstatic --noinput -v0

USER shadowlab
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status != 200)"
CMD ["gunicorn", "shadowlab.wsgi", "--config", "python:shadowlab.gunicorn_conf"]
