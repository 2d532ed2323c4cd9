#!/bin/bash
# Runs once, after InfluxDB 2's first-run setup (DOCKER_INFLUXDB_INIT_*):
# maps the InfluxQL database/retention policy "$INFLUXQL_DB/autogen" to the
# crampwatch bucket, so Grafana's InfluxQL queries (/query?db=...) find it.
set -euo pipefail

db="${INFLUXQL_DB:-crampwatch}"
bucket_id="${DOCKER_INFLUXDB_INIT_BUCKET_ID:-}"
if [ -z "$bucket_id" ]; then
	bucket_id=$(influx bucket list --org "$DOCKER_INFLUXDB_INIT_ORG" --name "$DOCKER_INFLUXDB_INIT_BUCKET" --hide-headers | cut -f1)
fi
influx v1 dbrp create \
	--org "$DOCKER_INFLUXDB_INIT_ORG" \
	--bucket-id "$bucket_id" \
	--db "$db" \
	--rp autogen \
	--default
echo "InfluxQL database $db/autogen -> bucket $DOCKER_INFLUXDB_INIT_BUCKET ($bucket_id)"
