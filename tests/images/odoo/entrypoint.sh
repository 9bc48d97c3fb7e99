#!/bin/bash
# The official odoo image's entrypoint contract, written from its documentation (README.md):
# database settings from HOST/PORT/USER/PASSWORD (PASSWORD_FILE), passed to odoo as
# --db_host/--db_port/--db_user/--db_password; wait for PostgreSQL; dispatch on $1.
set -e

if [ -v PASSWORD_FILE ]; then
    PASSWORD="$(< "$PASSWORD_FILE")"
fi
# The legacy link variables and POSTGRES_* still work as fallbacks.
: "${HOST:=${DB_PORT_5432_TCP_ADDR:-db}}"
: "${PORT:=${DB_PORT_5432_TCP_PORT:-5432}}"
: "${USER:=${DB_ENV_POSTGRES_USER:-${POSTGRES_USER:-odoo}}}"
: "${PASSWORD:=${DB_ENV_POSTGRES_PASSWORD:-${POSTGRES_PASSWORD:-odoo}}}"

version="$(cat /etc/odoo/version)"
conf="${ODOO_RC:-/etc/odoo/odoo.conf}"
DB_ARGS=()

conf_value() {
    # The value of key $1 in odoo.conf, if the key is set there (exit 1 otherwise).
    [ -f "$conf" ] || return 1
    local line
    line="$(grep -E "^[[:space:]]*$1[[:space:]]*=" "$conf")" || return 1
    line="${line##*$'\n'}"
    line="${line#*=}"
    line="${line%%[;#]*}"
    line="${line#"${line%%[![:space:]]*}"}"
    printf '%s' "${line%"${line##*[![:space:]]}"}"
}

add_db_arg() {
    local key="$1" value="$2" pg_var="$3" from_conf
    if [ "$version" = "19.0" ]; then
        # 19.0: libpq's variable wins (Odoo reads it itself), and a key odoo.conf sets is
        # left to odoo.conf.
        if [ -v "$pg_var" ] || conf_value "$key" >/dev/null; then
            return
        fi
    elif from_conf="$(conf_value "$key")"; then
        # Up to 18.0 the argument is always passed, with odoo.conf's value when it has one.
        value="$from_conf"
    fi
    DB_ARGS+=("--$key" "$value")
}
add_db_arg db_host "$HOST" PGHOST
add_db_arg db_port "$PORT" PGPORT
add_db_arg db_user "$USER" PGUSER
add_db_arg db_password "$PASSWORD" PGPASSWORD

case "$1" in
    -- | odoo)
        shift
        if [ "$1" = scaffold ]; then
            exec odoo "$@"
        fi
        wait-for-psql.py "${DB_ARGS[@]}" --timeout=30
        exec odoo "$@" "${DB_ARGS[@]}"
        ;;
    -*)
        wait-for-psql.py "${DB_ARGS[@]}" --timeout=30
        exec odoo "$@" "${DB_ARGS[@]}"
        ;;
    *)
        exec "$@"
        ;;
esac
