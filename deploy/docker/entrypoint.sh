#!/bin/sh
# lockgate-entrypoint COMMAND [ARG...]: the image's entry point.
#
# 1. PGPASSWORD_FILE and LOCKGATE_KEYS_FILE name files (Docker or Kubernetes secrets) whose
#    content becomes PGPASSWORD (libpq's password for a LOCKGATE_DB_URL without one) and
#    LOCKGATE_KEYS (the keyring); the *_FILE variables are then unset.
# 2. `dask-scheduler` and `dask-worker` (the commands older releases of the official Dask Helm
#    chart run; distributed 2026.6 removed them) become `dask scheduler` and `dask worker`.
# 3. COMMAND replaces this shell (it gets the signals: SIGTERM stops lockgate gracefully).
set -eu

for name in PGPASSWORD LOCKGATE_KEYS; do
    eval "file=\${${name}_FILE:-}"
    if [ -n "$file" ]; then
        if [ ! -f "$file" ] || [ ! -r "$file" ]; then
            echo "error: ${name}_FILE=$file is not a readable file; mount the secret there or unset ${name}_FILE" >&2
            exit 2
        fi
        value=$(cat "$file")
        if [ -z "$value" ]; then
            echo "error: ${name}_FILE=$file is empty; put the value in the secret" >&2
            exit 2
        fi
        export "$name=$value"
        unset "${name}_FILE"
    fi
done

if [ "$#" -eq 0 ]; then
    echo "error: no command given; e.g. lockgate up --host 0.0.0.0" >&2
    exit 2
fi

case "$1" in
    dask-scheduler) shift; set -- dask scheduler "$@" ;;
    dask-worker) shift; set -- dask worker "$@" ;;
esac

exec "$@"
