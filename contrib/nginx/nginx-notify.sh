#!/bin/sh
# vipd notify script for nginx HA (docs/recipes/nginx.md): nginx serves on the node that
# holds the VIP. The seed's notify.sh, without the mail (vipd mails by itself:
# smtp_alert) and with the state written down for nginx-check.sh.
#
#   notify_master = ["/etc/vipd/nginx-notify.sh", "master"]
#   notify_backup = ["/etc/vipd/nginx-notify.sh", "backup"]
#   notify_fault  = ["/etc/vipd/nginx-notify.sh", "fault"]
#
# The state is written before nginx is started, so that a failed start shows up in the
# check and the node hands the VIP over instead of holding it with nothing listening.
set -u
state_file=${VIPD_NGINX_STATE:-/run/vipd/nginx.state}
start=${VIPD_NGINX_START:-systemctl start nginx}
stop=${VIPD_NGINX_STOP:-systemctl stop nginx}

case "${1:-}" in
    master)
        echo master > "$state_file"
        $start
        ;;
    backup|fault)
        echo "$1" > "$state_file"
        $stop
        ;;
    *)
        echo "usage: $0 master|backup|fault" >&2
        exit 2
        ;;
esac
