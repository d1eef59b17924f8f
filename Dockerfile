# chronon-airflow on the official Airflow image: `docker compose build` (see docker-compose.yaml).
# Copies only the package sources (pyproject, README, the product and the two tool packages it runs); dags/, plugins/ and
# configs/ are mounted at run time, and no connection, key or .env file ever enters the image.
FROM apache/airflow:3.3.2

# Java for the local Spark engine (PySpark starts a JVM). apt needs root; the image runs as airflow.
USER root
RUN apt-get update \
    && apt-get install -y --no-install-recommends openjdk-17-jre-headless \
    && apt-get autoremove -yqq --purge \
    && apt-get clean \
    && rm -rf /var/lib/apt/lists/* \
    # A stable JAVA_HOME whatever the CPU architecture's directory name is.
    && ln -s "$(dirname "$(dirname "$(readlink -f "$(command -v java)")")")" /usr/lib/jvm/java-17 \
    # The warehouse and backend home volumes start from these directories, owned by airflow.
    && mkdir -p /opt/chronon/warehouse /opt/chronon/backend \
    && chown -R airflow:0 /opt/chronon \
    && chmod -R g+rwX /opt/chronon
ENV JAVA_HOME=/usr/lib/jvm/java-17

USER airflow
COPY --chown=airflow:0 pyproject.toml README.md /opt/chronon-airflow/
COPY --chown=airflow:0 chronon_airflow /opt/chronon-airflow/chronon_airflow
# The local engine and the reference backend (the compose file's Spark jobs and chronon-backend
# service); a production image that runs the Chronon jar against its own backend needs neither.
COPY --chown=airflow:0 chronon_local_engine /opt/chronon-airflow/chronon_local_engine
COPY --chown=airflow:0 chronon_reference_backend /opt/chronon-airflow/chronon_reference_backend
# Pinning apache-airflow to the image's version keeps pip from replacing the Airflow the image was
# built and tested with while it resolves this package's providers.
RUN pip install --no-cache-dir "apache-airflow==${AIRFLOW_VERSION}" "/opt/chronon-airflow[engine,backend]"
