#!/bin/sh
# lockgate's roles and database, for the official postgres image: docker-compose.yml mounts
# this file (read-only) into /docker-entrypoint-initdb.d, so the image runs it once, when it
# creates its data folder, connected as its superuser (POSTGRES_USER, `postgres`) over the
# socket of its temporary server. It makes what docs/postgresql.md ("Create the database and
# its roles") describes:
#
# - `lockgate`: owns the database `lockgate` (creates and upgrades the schema: the bootstrap
#   service's `lockgate db upgrade`); LOGIN, and no SUPERUSER, CREATEDB or CREATEROLE;
# - `lockgate_app`: what `lockgate up` and the Dask workers connect as: CONNECT and TEMPORARY
#   on the database, and reading and writing the rows of the tables the owner creates, and
#   using their sequences. Granted as default privileges of the owner's, so the tables every
#   later `lockgate db upgrade` adds are covered too (docs/postgresql.md's `GRANT ... ON ALL
#   TABLES` covers only the tables that exist when it runs, and none exists yet here).
#
# The passwords come from the files LOCKGATE_OWNER_PASSWORD_FILE and LOCKGATE_APP_PASSWORD_FILE
# (compose secrets); psql reads them from its environment (\getenv, psql 15) and quotes them,
# so they appear in no command line and in no file of the data folder but as SCRAM hashes.
# The image executes this file when it is executable and sources it otherwise: it works both
# ways (no `set -u`, names prefixed with lockgate_). PGHOST and PGPORT apply when set.
set -e

lockgate_password() {
    eval "lockgate_file=\${$1:-}"
    if [ -z "$lockgate_file" ] || [ ! -f "$lockgate_file" ] || [ ! -r "$lockgate_file" ]; then
        echo "error: $1=$lockgate_file is not a readable file; mount the compose secret there (deploy/docker-compose.yml)" >&2
        return 2
    fi
    lockgate_value=$(cat "$lockgate_file")
    if [ -z "$lockgate_value" ]; then
        echo "error: $1=$lockgate_file is empty; put a password in it (openssl rand -base64 32)" >&2
        return 2
    fi
    printf '%s' "$lockgate_value"
}

LOCKGATE_OWNER_PASSWORD=$(lockgate_password LOCKGATE_OWNER_PASSWORD_FILE) || exit 2
LOCKGATE_APP_PASSWORD=$(lockgate_password LOCKGATE_APP_PASSWORD_FILE) || exit 2
if [ "$LOCKGATE_OWNER_PASSWORD" = "$LOCKGATE_APP_PASSWORD" ] \
    || [ "$LOCKGATE_OWNER_PASSWORD" = "${POSTGRES_PASSWORD:-}" ] \
    || [ "$LOCKGATE_APP_PASSWORD" = "${POSTGRES_PASSWORD:-}" ]; then
    echo "error: the secret files postgres_password, lockgate_owner_password and lockgate_app_password must hold three different passwords; make each with openssl rand -base64 32" >&2
    exit 2
fi
export LOCKGATE_OWNER_PASSWORD LOCKGATE_APP_PASSWORD

psql --no-psqlrc --no-password --set=ON_ERROR_STOP=1 --quiet \
    --username="${POSTGRES_USER:-postgres}" --dbname=postgres <<'SQL'
\getenv lockgate_owner_password LOCKGATE_OWNER_PASSWORD
\getenv lockgate_app_password LOCKGATE_APP_PASSWORD
CREATE ROLE lockgate LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'lockgate_owner_password';
CREATE ROLE lockgate_app LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'lockgate_app_password';
\unset lockgate_owner_password
\unset lockgate_app_password
CREATE DATABASE lockgate OWNER lockgate;
GRANT CONNECT, TEMPORARY ON DATABASE lockgate TO lockgate_app;
\connect lockgate
ALTER DEFAULT PRIVILEGES FOR ROLE lockgate IN SCHEMA public
    GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO lockgate_app;
ALTER DEFAULT PRIVILEGES FOR ROLE lockgate IN SCHEMA public
    GRANT USAGE ON SEQUENCES TO lockgate_app;
SQL

unset LOCKGATE_OWNER_PASSWORD LOCKGATE_APP_PASSWORD lockgate_file lockgate_value
echo "lockgate-roles.sh: roles lockgate (owner of database lockgate) and lockgate_app created"
