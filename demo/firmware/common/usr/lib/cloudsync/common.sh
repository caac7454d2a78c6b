# Shared part of the Kestrel cloudsync agent (sourced by /usr/bin/cloudsync of every release).
# Reads the identity planted in $CLOUDSYNC_DATA (default /data): imei, phone, contacts (one per line), consent
# ("granted"; anything else or missing = declined). Each release's /usr/bin/cloudsync defines cs_cycle (what one
# sync cycle sends) and calls cs_main. One log line per request: method, URL, body bytes, address, status, result.
# CLOUDSYNC_DRYRUN=1 logs each request with its body instead of sending it.
. /etc/release
CS_DATA=${CLOUDSYNC_DATA:-/data}
CS_INTERVAL=${CLOUDSYNC_INTERVAL:-5}
CS_DRYRUN=${CLOUDSYNC_DRYRUN:-0}
CS_UA="kestrel-cloudsync/$CLOUDSYNC_VERSION (kestrel-os $KESTREL_VERSION)"
CS_API=http://api.account.kestrel.example
CS_TMP=${TMPDIR:-/tmp}/cloudsync.$$
mkdir -p "$CS_TMP"

cs_log() { echo "$(date -u +%Y-%m-%dT%H:%M:%SZ) $*"; }

# First line of a file without the newline, a CR, or surrounding blanks ("" if missing).
cs_read1() {
	local v=
	[ -r "$1" ] && { IFS= read -r v <"$1" || :; }
	printf '%s' "$v" | tr -d '\r' | sed -e 's/^[[:space:]]*//' -e 's/[[:space:]]*$//'
}
cs_imei() { cs_read1 "$CS_DATA/imei"; }
cs_phone() { cs_read1 "$CS_DATA/phone"; }
cs_consent() { [ "$(cs_read1 "$CS_DATA/consent")" = granted ] && echo granted || echo declined; }
# Contact lines exactly as planted (a CR before the newline dropped), empty lines skipped.
cs_contacts() { [ -r "$CS_DATA/contacts" ] && sed -e 's/\r$//' -e '/^$/d' "$CS_DATA/contacts"; }

# JSON string contents (backslash, quote and tab escaped).
cs_json() { printf '%s' "$1" | sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/	/\\t/g'; }
# Lines on stdin -> "a","b",... (a JSON array's inside).
cs_json_list() {
	local l sep=
	while IFS= read -r l || [ -n "$l" ]; do
		printf '%s"%s"' "$sep" "$(cs_json "$l")"
		sep=,
	done
}

# IPv4 address of a name, from busybox's own DNS client (reads /etc/resolv.conf, asks for A only).
# Not wget's getaddrinfo: glibc asks for A and AAAA and waits out a server that ignores AAAA (15 s).
cs_resolve() {
	case "$1" in *[!0-9.]*) ;; *) echo "$1"; return 0 ;; esac
	timeout 15 nslookup -type=a "$1" 2>/dev/null |
		awk '/^Name:/ { n = 1; next } n && /^Address/ { sub(/^Address[ 0-9]*:[ \t]*/, ""); print; exit }'
}

# cs_http METHOD URL [BODY_FILE CONTENT_TYPE]: one HTTP/1.1 request with the URL's host in the Host header,
# to the address cs_resolve gives; logged either way.
cs_http() {
	local method=$1 url=$2 body=$3 ctype=$4 rest hostport path port= bytes=0 addr rc status res
	rest=${url#http://}
	hostport=${rest%%/*}
	path=/${rest#*/}
	[ "$rest" = "$hostport" ] && path=/
	case "$hostport" in *:*) port=:${hostport#*:} ;; esac
	[ -n "$body" ] && bytes=$(wc -c <"$body")
	if [ "$CS_DRYRUN" = 1 ]; then
		if [ -n "$body" ]; then
			cs_log "DRYRUN $method $url bytes=$bytes type=$ctype body=$(cat "$body")"
		else
			cs_log "DRYRUN $method $url bytes=0"
		fi
		return 0
	fi
	addr=$(cs_resolve "${hostport%%:*}")
	if [ -z "$addr" ]; then
		cs_log "$method $url bytes=$bytes result=fail(dns)"
		return 1
	fi
	set -- -q -S -O "$CS_TMP/response" -U "$CS_UA" --header "Host: $hostport"
	[ "$method" = POST ] && set -- "$@" --header "Content-Type: $ctype" --post-file "$body"
	# busybox wget has no working -T here (it crashes), hence timeout(1)
	timeout 20 wget "$@" "http://$addr$port$path" 2>"$CS_TMP/headers"
	rc=$?
	status=$(sed -n 's/^ *HTTP\/[0-9.]* \([0-9][0-9][0-9]\).*/\1/p' "$CS_TMP/headers" | tail -n 1)
	if [ "$rc" = 0 ]; then res=ok; else res="fail(wget rc=$rc)"; fi
	cs_log "$method $url bytes=$bytes addr=$addr status=${status:-none} result=$res"
	[ "$rc" = 0 ]
}

# The account registration upload: IMEI, phone number and every contact in plain JSON (v1 on every cycle; the
# later releases when consent is granted).
cs_register() {
	printf '{"device":{"model":"kestrel-phone","os":"kestrel-os %s","imei":"%s","msisdn":"%s"},"contacts":[%s],"client":"cloudsync/%s"}' \
		"$KESTREL_VERSION" "$(cs_json "$(cs_imei)")" "$(cs_json "$(cs_phone)")" "$(cs_contacts | cs_json_list)" \
		"$CLOUDSYNC_VERSION" >"$CS_TMP/register.json"
	cs_http POST "$CS_API/v1/register" "$CS_TMP/register.json" application/json
}

# cs_main [--once]: the sync loop (one cycle with --once); skips cycles while $CS_DATA/imei is missing or empty.
cs_main() {
	local n=0 waiting=0
	cs_log "cloudsync $CLOUDSYNC_VERSION ($FIRMWARE) started: interval=${CS_INTERVAL}s dryrun=$CS_DRYRUN data=$CS_DATA"
	while :; do
		if [ -s "$CS_DATA/imei" ]; then
			n=$((n + 1))
			waiting=0
			cs_cycle "$n" "$(cs_consent)"
		elif [ "$waiting" = 0 ]; then
			cs_log "no identity yet ($CS_DATA/imei missing): waiting"
			waiting=1
		fi
		[ "$1" = --once ] && break
		sleep "$CS_INTERVAL"
	done
	rm -rf "$CS_TMP"
}
