#!/bin/sh
# vipd track script for nginx HA (docs/recipes/nginx.md): healthy unless this node is
# MASTER (as nginx-notify.sh recorded) and nginx is not running. A backup stops nginx on
# purpose, so a plain "is nginx running" check would fault every backup.
#
#   [script.chk_nginx]
#   script = "/etc/vipd/nginx-check.sh"
state_file=${VIPD_NGINX_STATE:-/run/vipd/nginx.state}
pid_file=${VIPD_NGINX_PIDFILE:-/run/nginx.pid}

[ "$(cat "$state_file" 2>/dev/null)" = master ] || exit 0
pid=$(cat "$pid_file" 2>/dev/null) || exit 1
[ -n "$pid" ] || exit 1
# A process that is gone, or a zombie nobody has reaped yet (kill -0 still succeeds on
# one), is not serving. Field 3 of /proc/PID/stat is the state.
state=$(sed -n 's/^[0-9]* (.*) \(.\) .*/\1/p' "/proc/$pid/stat" 2>/dev/null)
[ -n "$state" ] && [ "$state" != Z ]
