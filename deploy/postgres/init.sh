#!/bin/sh
# Runs once, when the postgres container initialises its volume (as the superuser
# POSTGRES_USER). The workers' login: a member of the writer role and nothing else, so it
# can insert and read records but never delete them or drop their guard. The service
# records-migrate then hands the tables to screening_owner and grants the writer role
# INSERT, SELECT (docs/enforcement.md). The password comes from deploy/.env.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
  -v password="$WORKER_DB_PASSWORD" <<'SQL'
CREATE ROLE screening_writer NOLOGIN;
CREATE ROLE screening_worker LOGIN PASSWORD :'password' IN ROLE screening_writer;
SQL
