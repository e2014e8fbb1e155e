# Python 3.11 from Debian's packages, standing in for the official python:3.11-slim where no image
# registry is reachable. Only what deploy/docker/Dockerfile needs: python3 and its venv module.
ARG DEBIAN_IMAGE=debian:bookworm-slim
FROM ${DEBIAN_IMAGE}
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv ca-certificates \
 && rm -rf /var/lib/apt/lists/*
ENV LANG=C.UTF-8 PYTHONUNBUFFERED=1
CMD ["python3"]
