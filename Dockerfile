FROM python:3.11-slim-bookworm
RUN apt-get update && apt-get install -y --no-install-recommends \
        gcc swig libpcsclite-dev libzbar0 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml README.md ./
COPY hub hub
COPY devices devices
COPY integrations integrations
COPY firmware_configs firmware_configs
RUN pip install --no-cache-dir .
ENV HUB_HOST=0.0.0.0
EXPOSE 8000
CMD ["sshub", "serve"]
