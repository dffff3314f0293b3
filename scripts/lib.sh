# Shared by scripts/run-stack and scripts/test. Source it; it defines functions only.

# Installs the Debian packages the build, the stack and the tests need, where any is missing.
ensure_packages() {
    local wanted=(librdkafka-dev libpq-dev libcurl4-openssl-dev libssl-dev postgresql kcat pkg-config "$@")
    local missing=()
    for package in "${wanted[@]}"; do
        dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "installing ${missing[*]}"
    local sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# PostgreSQL's server binaries (initdb, pg_ctl) are not on PATH on Debian.
pg_bin() {
    ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1
}

# A free TCP port on 127.0.0.1.
free_port() {
    # Below the kernel's ephemeral range, where no outgoing connection or port-0 bind can take it first.
    python3 -c '
import random, socket
low = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
for _ in range(200):
    port = random.randint(10000, max(11000, low - 1))
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port)); print(port); break
    except OSError:
        pass
    finally:
        s.close()
'
}

# Runs a command as the user that owns the PostgreSQL data folder (never root: initdb refuses it).
as_pg_user() {
    if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# start_postgres DIR: a private server whose data and socket live in DIR, on a free port, listening on
# 127.0.0.1 only, WRITEBACK_POSTGRES_OPTIONS added to its options (e.g. `-c
# shared_preload_libraries=pg_stat_statements`). Sets PGHOST (the socket folder), PGPORT and PGUSER for the caller.
start_postgres() {
    local dir="$1"
    local bin
    bin="$(pg_bin)"
    rm -rf "$dir"
    mkdir -p "$dir"
    [ "$(id -u)" -eq 0 ] && chown postgres:postgres "$dir"
    as_pg_user "$bin/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --no-locale >"$dir/initdb.log" 2>&1 || {
        cat "$dir/initdb.log"
        return 1
    }
    PGPORT="$(free_port)"
    as_pg_user "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
        -o "-p $PGPORT -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300 ${WRITEBACK_POSTGRES_OPTIONS:-}" start >/dev/null || {
        cat "$dir/server.log"
        return 1
    }
    export PGHOST="$dir" PGPORT PGUSER=postgres
}

stop_postgres() {
    local dir="$1"
    [ -d "$dir/data" ] && as_pg_user "$(pg_bin)/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
}

# swift build with its progress lines left out; fails as the build fails.
build_quietly() {
    local log
    log="$(mktemp)"
    if swift build "$@" >"$log" 2>&1; then
        grep -vE '^\[[0-9]+/[0-9]+\]|unhandled; explicitly declare|^warning: .swift-distributed-tracing|CMakeLists.txt$|^Building for|^Build of product|complete!' "$log" || true
        rm -f "$log"
    else
        cat "$log"
        rm -f "$log"
        return 1
    fi
}

# build_products [--tests] [FLAGS...]: builds every executable of the package (and with --tests first, the
# test bundle, which compiles most of what they share).
build_products() {
    if [ "${1:-}" = "--tests" ]; then
        shift
        build_quietly --product writebackPackageTests "$@"
    fi
    build_quietly "$@"
}
