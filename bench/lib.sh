# bench/lib.sh: what the bench scripts share (sourced, bash): their temp
# directory, background processes started and stopped by name, and the origin
# nginx. Each script keeps its own cleanup trap; it calls stop_all there.
#
#   bench_tmp NAME      T=/tmp/umbra-NAME.XXXXXX with www/, logs/, nginx/
#   start_bg NAME CMD.. runs CMD in the background, output to logs/NAME.log
#   stop NAME           SIGTERM, up to 3 s to exit, then SIGKILL
#   stop_all            stops every process still running, last started first
#   bench_origin PORT [SERVER_BLOCKS]
#                       nginx (1 worker, sendfile) serving $T/www on
#                       127.0.0.1:PORT, plus any further server { } blocks
#                       given; returns non-zero when it does not listen
#                       within 10 s

declare -A PID=()
ORDER=()

bench_tmp() {
  T=$(mktemp -d "/tmp/umbra-$1.XXXXXX")
  chmod 711 "$T" # nginx workers (user nobody when run as root) must reach www/
  mkdir -p "$T/www" "$T/logs" "$T/nginx"
}

start_bg() {
  local name=$1
  shift
  "$@" >"$T/logs/$name.log" 2>&1 &
  PID[$name]=$!
  ORDER+=("$name")
}

stop() {
  local pid=${PID[$1]:-} i
  [ -n "$pid" ] || return 0
  kill -TERM "$pid" 2>/dev/null
  for i in $(seq 30); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  unset "PID[$1]"
}

stop_all() {
  local i
  for ((i = ${#ORDER[@]} - 1; i >= 0; i--)); do stop "${ORDER[$i]}"; done
}

bench_origin() {
  local port=$1 extra=${2:-}
  cat >"$T/nginx/nginx.conf" <<CONF
daemon off;
master_process on;
worker_processes 1;
worker_rlimit_nofile 16384;
pid $T/nginx/nginx.pid;
error_log $T/logs/nginx-error.log warn;
events { worker_connections 8192; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  tcp_nodelay on;
  keepalive_timeout 30s;
  client_header_timeout 300s;  # held connections may send half a request
  client_body_temp_path $T/nginx/body;
  proxy_temp_path $T/nginx/proxy;
  fastcgi_temp_path $T/nginx/fastcgi;
  uwsgi_temp_path $T/nginx/uwsgi;
  scgi_temp_path $T/nginx/scgi;
  types { application/octet-stream bin; text/plain txt; }
  server { listen 127.0.0.1:$port; root $T/www; }
$extra
}
CONF
  start_bg nginx /usr/sbin/nginx -e "$T/logs/nginx-error.log" -p "$T/nginx" -c "$T/nginx/nginx.conf"
  /usr/bin/python3 "$(dirname "${BASH_SOURCE[0]}")/peers_tool.py" wait-port "$port" 10
}
