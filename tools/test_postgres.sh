#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the tests and benchmarks: a temp directory, a free port on
# 127.0.0.1 only, a superuser `vital_ci` with a random password (scram-sha-256).
#
#   eval "$(tools/test_postgres.sh start)"   # exports VITAL_TEST_PG, PGPASSWORD, VITAL_TEST_PG_DIR
#   tools/test_postgres.sh stop "$VITAL_TEST_PG_DIR"
#   tools/test_postgres.sh pause DIR / resume DIR   # the server down, then up on the same port
#
# VITAL_TEST_PG_PASSWORD, when set, is the superuser's password instead of a random one.
# `start --durable` keeps fsync on (the latency benchmarks); the tests run with fsync off, which
# changes nothing they check. PostgreSQL refuses to run as root, so as root the cluster belongs
# to the `postgres` system user (Debian's postgresql package creates it).
set -euo pipefail

bindir() {
    local found
    found=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
    if [ -n "$found" ]; then
        echo "$found"
    elif command -v pg_ctl >/dev/null 2>&1; then
        dirname "$(command -v pg_ctl)"
    else
        echo "PostgreSQL is not installed (Debian: apt-get install postgresql)" >&2
        exit 1
    fi
}

as_owner() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

case "${1:-}" in
start)
    fsync=off
    [ "${2:-}" = "--durable" ] && fsync=on
    bin=$(bindir)
    dir=$(mktemp -d /tmp/vital-pg.XXXXXX)
    password=${VITAL_TEST_PG_PASSWORD:-$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')}
    printf '%s\n' "$password" >"$dir/password"
    if [ "$(id -u)" = 0 ]; then
        chown -R postgres: "$dir"
    fi
    chmod 700 "$dir"
    as_owner "$bin/initdb" -D "$dir/data" -U vital_ci -A scram-sha-256 --pwfile="$dir/password" \
        -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 || {
        cat "$dir/initdb.log" >&2
        exit 1
    }
    # TLS: a throwaway CA and a server certificate for 127.0.0.1 and localhost, so the tests
    # connect with every sslmode (the CA is exported as VITAL_TEST_PG_CA).
    tls=""
    if command -v openssl >/dev/null 2>&1; then
        (
            cd "$dir"
            openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=vital test CA" \
                -keyout ca.key -out ca.pem >/dev/null 2>&1
            openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" \
                -keyout server.key -out server.csr >/dev/null 2>&1
            printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >san.ext
            openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
                -extfile san.ext -out server.pem >/dev/null 2>&1
            chmod 600 server.key
        )
        if [ "$(id -u)" = 0 ]; then
            chown postgres: "$dir"/server.key "$dir"/server.pem
        fi
        tls="-c ssl=on -c ssl_cert_file=$dir/server.pem -c ssl_key_file=$dir/server.key"
    fi
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    options="-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=$fsync -c max_connections=200 $tls"
    printf '%s\n' "$options" >"$dir/options"
    as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 -o "$options" \
        start >/dev/null || {
        cat "$dir/server.log" >&2
        exit 1
    }
    echo "export VITAL_TEST_PG='postgresql://vital_ci@127.0.0.1:$port/postgres?sslmode=disable'"
    echo "export PGPASSWORD='$password'"
    echo "export VITAL_TEST_PG_DIR='$dir'"
    if [ -n "$tls" ]; then
        echo "export VITAL_TEST_PG_CA='$dir/ca.pem'"
    fi
    ;;
pause)
    dir=${2:?usage: test_postgres.sh pause DIR}
    as_owner "$(bindir)/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null
    ;;
resume)
    dir=${2:?usage: test_postgres.sh resume DIR}
    as_owner "$(bindir)/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
        -o "$(cat "$dir/options")" start >/dev/null
    ;;
stop)
    dir=${2:?usage: test_postgres.sh stop DIR}
    as_owner "$(bindir)/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
    rm -rf "$dir"
    ;;
*)
    echo "usage: $0 start [--durable] | pause DIR | resume DIR | stop DIR" >&2
    exit 2
    ;;
esac
