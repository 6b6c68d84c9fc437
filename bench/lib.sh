# Shared shell helpers for the bench/ sections (sourced, not run).
# Sections are started by bench/run, which exports:
#   BENCH_ROOT  the repository        BENCH_BIN    the airlock binary
#   BENCH_OUT   where results go      BENCH_WORK   scratch space, removed at exit
#   BENCH_CACHE generated inputs kept between runs (under the cargo target dir)
#   BENCH_QUICK 1 for --quick

# Run standalone (bench/<area>/run): go through bench/run so the binary is built
# and the environment set.   Usage: bench_standalone SECTION "$@"
bench_standalone() {
  if [ -z "${BENCH_OUT:-}" ]; then
    local section="$1"; shift
    exec "$(dirname "${BASH_SOURCE[0]}")/run" --only "$section" "$@"
  fi
}

# pick QUICK FULL: the value for this mode.
pick() { if [ "${BENCH_QUICK:-0}" = 1 ]; then echo "$1"; else echo "$2"; fi; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# start_nginx DIR: nginx on 127.0.0.1 answering every path with a small JSON body;
# prints the port. Stopped by stop_nginx DIR (call it from the section's trap).
start_nginx() {
  local dir="$1" port
  port="$(free_port)"
  mkdir -p "$dir"
  cat > "$dir/nginx.conf" <<CONF
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/error.log;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $dir/body; proxy_temp_path $dir/proxy; fastcgi_temp_path $dir/fastcgi;
  uwsgi_temp_path $dir/uwsgi; scgi_temp_path $dir/scgi;
  keepalive_requests 10000000;
  server {
    listen 127.0.0.1:$port;
    location / { default_type application/json; return 200 '{"ok":true,"items":[1,2,3]}'; }
  }
}
CONF
  nginx -e "$dir/error.log" -c "$dir/nginx.conf"
  echo "$port"
}

stop_nginx() {
  [ -f "$1/nginx.pid" ] && kill "$(cat "$1/nginx.pid")" 2>/dev/null || true
}

# bench_home HOME URL FSYNC: a fresh airlock home with service and capability
# `bench` (bearer key) pointing at URL, audit_fsync = FSYNC.
bench_home() {
  local home="$1" url="$2" fsync="$3"
  AIRLOCK_HOME="$home" BENCH_KEY=sk_test_bench_0123456789abcdef \
    "$BENCH_BIN" add bench --cap --url "$url" --key-from-env BENCH_KEY >/dev/null 2>&1
  set_fsync "$home" "$fsync"
}

# set_fsync HOME always|batch
set_fsync() {
  local toml="$1/airlock.toml"
  sed -i '/^audit_fsync *=/d' "$toml"
  if grep -q '^\[server\]' "$toml"; then
    sed -i "s/^\[server\]\$/[server]\naudit_fsync = \"$2\"/" "$toml"
  else
    printf '[server]\naudit_fsync = "%s"\n\n%s\n' "$2" "$(cat "$toml")" > "$toml.new" && mv "$toml.new" "$toml"
  fi
}
