#!/bin/sh
# Run once by the postgres image when it creates its database (docker-entrypoint-initdb.d):
# replication connections, which pg_hba's "all" does not cover, for the `replica` profile's
# server (compose.yaml). Password-checked, as every other connection.
set -eu
echo "host replication ${POSTGRES_USER} all scram-sha-256" >> "$PGDATA/pg_hba.conf"
