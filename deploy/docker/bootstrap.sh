#!/bin/sh
# lockgate-bootstrap [COMMAND [ARG...]]: prepare the project's metadata database, then run
# COMMAND if one is given (e.g. `lockgate-bootstrap lockgate up --host 0.0.0.0`).
#
# - `lockgate db upgrade`: creates or migrates the database (LOCKGATE_DB_URL, else SQLite under
#   the project's .lockgate/ folder); on PostgreSQL several pods may run it at once.
# - When the database has no user yet, adds the first admin (BOOTSTRAP_ADMIN_USER, default
#   admin): with the password in the file BOOTSTRAP_ADMIN_PASSWORD_FILE when that is set (at
#   least 12 characters, not containing the user name), else with a one-time password that is
#   printed once, here, and must be changed at the first login. A database that already has
#   users is left alone, so running this again (a restarted pod) changes nothing.
set -eu

admin="${BOOTSTRAP_ADMIN_USER:-admin}"
password_file="${BOOTSTRAP_ADMIN_PASSWORD_FILE:-}"

if [ -n "$password_file" ] && { [ ! -f "$password_file" ] || [ ! -r "$password_file" ]; }; then
    echo "error: BOOTSTRAP_ADMIN_PASSWORD_FILE=$password_file is not a readable file; mount the admin password secret there or unset the variable" >&2
    exit 2
fi

lockgate db upgrade

# 0: no user yet; 1: some; 2 (after lockgate's own error): the list failed. A failure must
# not read as "some users", or a broken database would go on without its first admin.
no_users() {
    users=$(lockgate users list --json) || return 2
    [ "$(printf '%s' "$users" | tr -d '[:space:]')" = "[]" ]
}

add_admin() {
    if [ -n "$password_file" ]; then
        lockgate users add "$admin" --role admin --password-stdin < "$password_file"
    else
        lockgate users add "$admin" --role admin
    fi
}

found=0
no_users || found=$?
if [ "$found" -eq 2 ]; then
    exit 2
fi
if [ "$found" -eq 0 ]; then
    status=0
    add_admin || status=$?
    # a failure stands unless another pod added the first user at the same moment
    if [ "$status" -ne 0 ]; then
        again=0
        no_users || again=$?
        if [ "$again" -ne 1 ]; then
            exit "$status"
        fi
    fi
fi

if [ "$#" -gt 0 ]; then
    exec "$@"
fi
