# shellcheck shell=bash
# Shared helpers for the flightwatch scripts. Source it; do not execute it.

fw_log() { echo "==> $*" >&2; }

# Repo root (the directory above scripts/). Sets FW_ROOT and prints it.
fw_root() {
  FW_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
  echo "$FW_ROOT"
}

# Keep the build cache outside the clone so fresh CI clones reuse it.
fw_target_dir() {
  if [[ -z "${CARGO_TARGET_DIR:-}" ]]; then
    export CARGO_TARGET_DIR="${FLIGHTWATCH_TARGET_DIR:-$HOME/.cache/flightwatch/target}"
  fi
  mkdir -p "$CARGO_TARGET_DIR"
  fw_log "cargo target dir: $CARGO_TARGET_DIR"
}

fw_mariadb_ping() { mysqladmin --user=root ping >/dev/null 2>&1; }

# Runs the SQL on stdin as the database root user over the unix socket.
fw_mariadb_root() {
  if [[ $EUID -eq 0 ]]; then mariadb -uroot; else sudo mariadb -uroot; fi
}

# Makes sure a local MariaDB server answers; installs/starts it when running as root.
fw_mariadb_ensure() {
  if command -v mysqladmin >/dev/null && fw_mariadb_ping; then
    fw_log "MariaDB is running"
    return 0
  fi
  if [[ ! -x /usr/sbin/mariadbd ]]; then
    if [[ $EUID -eq 0 ]] && command -v apt-get >/dev/null; then
      fw_log "installing MariaDB (apt-get)"
      apt-get update -qq
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mariadb-server mariadb-client
    else
      fw_log "MariaDB is not installed. Install it with one of:"
      fw_log "  Debian/Ubuntu: sudo apt-get install mariadb-server"
      fw_log "  macOS:         brew install mariadb && brew services start mariadb"
      fw_log "  or set DATABASE_URL to any MySQL 8 / MariaDB 10.6+ server"
      return 1
    fi
  fi
  if fw_mariadb_ping; then return 0; fi  # the package may have started it
  if [[ $EUID -ne 0 ]]; then
    fw_log "MariaDB is installed but not running. Start it with:"
    fw_log "  sudo systemctl start mariadb   (or: brew services start mariadb)"
    fw_log "  or set DATABASE_URL to any MySQL 8 / MariaDB 10.6+ server"
    return 1
  fi
  fw_log "starting MariaDB (without systemd)"
  mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd -- --user=mysql
  local i
  for ((i = 0; i < 30; i++)); do
    if fw_mariadb_ping; then
      fw_log "MariaDB is up"
      return 0
    fi
    sleep 1
  done
  fw_log "MariaDB did not answer within 30 s"
  return 1
}

# Creates the flightwatch database and user, and exports DATABASE_URL (unless already set).
# This is a local development/test user with a well-known password -- never use it in production.
# It gets ALL PRIVILEGES ON *.* WITH GRANT OPTION because #[sqlx::test] creates a database per
# test and the provisioning tests create users, as the RDS admin user does.
fw_mariadb_app_user() {
  local host
  host="$(hostname 2>/dev/null || uname -n)"
  fw_log "ensuring database 'flightwatch' and user 'flightwatch'"
  fw_mariadb_root <<SQL
CREATE DATABASE IF NOT EXISTS flightwatch;
CREATE USER IF NOT EXISTS 'flightwatch'@'localhost' IDENTIFIED BY 'flightwatch';
CREATE USER IF NOT EXISTS 'flightwatch'@'%' IDENTIFIED BY 'flightwatch';
ALTER USER 'flightwatch'@'localhost' IDENTIFIED BY 'flightwatch';
ALTER USER 'flightwatch'@'%' IDENTIFIED BY 'flightwatch';
GRANT ALL PRIVILEGES ON *.* TO 'flightwatch'@'localhost' WITH GRANT OPTION;
GRANT ALL PRIVILEGES ON *.* TO 'flightwatch'@'%' WITH GRANT OPTION;
-- Anonymous users shadow TCP logins of named users.
DROP USER IF EXISTS ''@'localhost';
DROP USER IF EXISTS ''@'${host}';
FLUSH PRIVILEGES;
SQL
  if [[ -z "${DATABASE_URL:-}" ]]; then
    export DATABASE_URL="mysql://flightwatch:flightwatch@127.0.0.1:${FLIGHTWATCH_DB_PORT:-3306}/flightwatch"
  fi
}

# fw_wait_http URL SECONDS [PID]: polls URL until it answers 200. Fails after SECONDS,
# or as soon as process PID (if given) has exited.
fw_wait_http() {
  local url=$1 deadline=$((SECONDS + $2)) pid=${3:-}
  until [[ "$(curl -sS -o /dev/null -w '%{http_code}' "$url" 2>/dev/null)" == 200 ]]; do
    if ((SECONDS >= deadline)); then
      fw_log "timed out after $2 s waiting for $url"
      return 1
    fi
    if [[ -n "$pid" ]] && ! kill -0 "$pid" 2>/dev/null; then
      fw_log "process $pid exited while waiting for $url"
      return 1
    fi
    sleep 1
  done
}

# The Python-packaged tools the tests use, in a venv outside the clone: moto (AWS emulator),
# cargo-lambda (Lambda runtime emulator and builds; ships zig), openapi-spec-validator.
# Puts the venv's bin/ first on PATH.
fw_python_tools() {
  local venv="$HOME/.cache/flightwatch/venv"
  local tools=(moto_server cargo-lambda openapi-spec-validator)
  local missing=0 tool
  for tool in "${tools[@]}"; do [[ -x "$venv/bin/$tool" ]] || missing=1; done
  if ((missing)); then
    fw_log "installing moto[server], cargo-lambda and openapi-spec-validator into $venv"
    [[ -x "$venv/bin/pip" ]] || python3 -m venv "$venv"
    "$venv/bin/pip" install -q 'moto[server]>=5,<6' 'cargo-lambda>=1.9,<2' 'openapi-spec-validator>=0.7,<1'
  fi
  export PATH="$venv/bin:$PATH"
}

# schemathesis (requests generated from openapi.yaml), in a venv of its own: its pins do not mix
# with moto's. Sets FW_SCHEMATHESIS to its executable.
fw_schemathesis() {
  local venv="$HOME/.cache/flightwatch/schemathesis"
  FW_SCHEMATHESIS="$venv/bin/schemathesis"
  if [[ ! -x "$FW_SCHEMATHESIS" ]]; then
    fw_log "installing schemathesis into $venv"
    [[ -x "$venv/bin/pip" ]] || python3 -m venv "$venv"
    "$venv/bin/pip" install -q 'schemathesis>=4,<5'
  fi
}

# A free TCP port on 127.0.0.1.
fw_free_port() {
  python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'
}

# Starts moto server on a free port and points the AWS SDKs at it (AWS_ENDPOINT_URL, fake
# credentials). Sets FW_MOTO_PID; the caller stops it.
fw_moto_start() {
  local port
  port=$(fw_free_port)
  moto_server -H 127.0.0.1 -p "$port" >"${TMPDIR:-/tmp}/flightwatch-moto-$port.log" 2>&1 &
  FW_MOTO_PID=$!
  export AWS_ENDPOINT_URL="http://127.0.0.1:$port"
  export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
  fw_wait_http "$AWS_ENDPOINT_URL/moto-api/data.json" 30 "$FW_MOTO_PID"
  fw_log "moto server on $AWS_ENDPOINT_URL"
}
