#!/bin/bash
# Entry point of the test tier's postgres image, written from the official image's documented
# behaviour: on first start with an empty $PGDATA, initdb as `postgres` with POSTGRES_USER and
# its password, create POSTGRES_DB, run /docker-entrypoint-initdb.d, then serve on every
# address with password authentication for remote hosts. A $PGDATA that holds a cluster is
# served as it is: the password variables only matter on the first start.
set -Eeuo pipefail

fail() {
	echo "error: $*" >&2
	exit 1
}

# NAME from $NAME or from the file $NAME_FILE names (Docker secrets); both at once is an error.
from_env_or_file() {
	local name=$1 default=${2:-} file_var="${1}_FILE"
	local direct=${!name:-} file=${!file_var:-}
	[ -n "$direct" ] && [ -n "$file" ] && fail "both $name and $file_var are set"
	local value=$default
	if [ -n "$direct" ]; then
		value=$direct
	elif [ -n "$file" ]; then
		value=$(<"$file")
	fi
	export "$name=$value"
	unset "$file_var"
}

run_init_scripts() {
	local script
	shopt -s nullglob
	for script in /docker-entrypoint-initdb.d/*; do
		case "$script" in
		*.sh)
			echo "running $script"
			if [ -x "$script" ]; then "$script"; else . "$script"; fi
			;;
		*.sql)
			echo "running $script"
			psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --no-password --dbname "$POSTGRES_DB" -f "$script"
			;;
		*.sql.gz)
			echo "running $script"
			gunzip -c "$script" | psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --no-password --dbname "$POSTGRES_DB"
			;;
		*) echo "ignoring $script" ;;
		esac
	done
}

initialise() {
	from_env_or_file POSTGRES_PASSWORD
	from_env_or_file POSTGRES_USER postgres
	from_env_or_file POSTGRES_DB "$POSTGRES_USER"
	from_env_or_file POSTGRES_INITDB_ARGS
	local auth=${POSTGRES_HOST_AUTH_METHOD:-scram-sha-256}
	if [ -z "$POSTGRES_PASSWORD" ] && [ "$auth" != trust ]; then
		fail "Database is uninitialized and superuser password is not specified." \
			"Set POSTGRES_PASSWORD (or POSTGRES_PASSWORD_FILE), or POSTGRES_HOST_AUTH_METHOD=trust."
	fi
	# The password reaches initdb on its stdin, never on a command line.
	local pwfile=()
	if [ -n "$POSTGRES_PASSWORD" ]; then
		pwfile=(--pwfile=/dev/stdin)
	fi
	# shellcheck disable=SC2086  # POSTGRES_INITDB_ARGS is a list of words by contract
	initdb -D "$PGDATA" --username="$POSTGRES_USER" "${pwfile[@]}" $POSTGRES_INITDB_ARGS \
		<<<"$POSTGRES_PASSWORD"
	echo "listen_addresses = '*'" >>"$PGDATA/postgresql.conf"
	printf '\nhost all all all %s\n' "$auth" >>"$PGDATA/pg_hba.conf"

	# A server on the socket only while the database and scripts are set up, so nothing
	# outside reaches a half-initialised cluster.
	pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w start
	if [ "$POSTGRES_DB" != postgres ]; then
		psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --no-password --dbname postgres \
			--set db="$POSTGRES_DB" <<<'CREATE DATABASE :"db";'
	fi
	run_init_scripts
	pg_ctl -D "$PGDATA" -m fast -w stop
	echo "PostgreSQL init process complete; ready for start up."
}

if [ "${1:0:1}" = '-' ]; then
	set -- postgres "$@"
fi

if [ "$1" = postgres ]; then
	if [ "$(id -u)" = 0 ]; then
		# Volumes arrive owned by root: hand them to postgres, then drop root for good.
		mkdir -p "$PGDATA" /var/run/postgresql
		chown postgres:postgres "$PGDATA" /var/run/postgresql
		chmod 700 "$PGDATA"
		chmod 2777 /var/run/postgresql
		exec setpriv --reuid=postgres --regid=postgres --init-groups "$BASH_SOURCE" "$@"
	fi
	if [ -s "$PGDATA/PG_VERSION" ]; then
		echo "PostgreSQL Database directory appears to contain a database; Skipping initialization"
	else
		initialise
	fi
	unset POSTGRES_PASSWORD POSTGRES_PASSWORD_FILE
fi

exec "$@"
