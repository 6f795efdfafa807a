FROM python:3.11-slim-bookworm
WORKDIR /app
COPY pyproject.toml README.md ./
COPY server server
COPY signaling signaling
COPY web web
COPY records records
RUN pip install --no-cache-dir . && useradd --system --home /app casa
USER casa
ENV CASA_HOST=0.0.0.0 CASA_PORT=8080
EXPOSE 8080
CMD ["casa", "serve"]
