#!/usr/bin/env bash
# Checks every NEXUS service's GET /health and prints one line per service; exits 1 when any is down
# (unreachable, or not 200), 0 when all answer. For cron and monitoring.
#
#   scripts/health-check.sh [--strict] [--timeout SECONDS] [[NAME=]URL ...]
#
# URLs are service base URLs; without any, NEXUS_HEALTH_URLS (space-separated) or http://127.0.0.1:8080.
# The compose stack: scripts/health-check.sh proxy=http://127.0.0.1:8080 cortex=http://127.0.0.1:8090 \
#   auth=http://127.0.0.1:8003 gateway=http://127.0.0.1:4000
# --strict also fails on "degraded" (e.g. Ollama down, Redis unreachable) instead of only warning.
set -euo pipefail

strict=false
timeout=5
targets=()
while [[ $# -gt 0 ]]; do
  case $1 in
    --strict) strict=true ;;
    --timeout)
      timeout=${2:?--timeout needs seconds}
      shift
      ;;
    -h | --help)
      sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'
      exit 0
      ;;
    -*)
      echo "health-check: unknown option $1" >&2
      exit 2
      ;;
    *) targets+=("$1") ;;
  esac
  shift
done
if [[ ${#targets[@]} -eq 0 ]]; then
  read -r -a targets <<<"${NEXUS_HEALTH_URLS:-http://127.0.0.1:8080}"
fi

# fetch URL: prints "<status> <body>" (status 000 when unreachable). curl when present, else Node.
fetch() {
  if command -v curl >/dev/null; then
    local body status
    body=$(mktemp)
    status=$(curl -sS -m "$timeout" -o "$body" -w '%{http_code}' "$1" 2>/dev/null) || status=000
    printf '%s %s' "$status" "$(tr -d '\n' <"$body")"
    rm -f "$body"
  elif command -v node >/dev/null; then
    # shellcheck disable=SC2016 # JavaScript, not shell: its ${} is a template literal
    node -e '
      fetch(process.argv[1], { signal: AbortSignal.timeout(Number(process.argv[2]) * 1000) })
        .then(async (r) => process.stdout.write(`${r.status} ${(await r.text()).replace(/\n/g, "")}`))
        .catch(() => process.stdout.write("000 "))' "$1" "$timeout"
  else
    echo "health-check: needs curl or node" >&2
    exit 2
  fi
}

failed=0
for target in "${targets[@]}"; do
  name=${target%%=*}
  url=${target#*=}
  [[ $target == *=* ]] || name=$url
  url=${url%/}
  read -r status body <<<"$(fetch "$url/health")" || true
  overall=$(sed -n 's/^{"status":"\([a-z]*\)".*/\1/p' <<<"${body:-}")
  failing=$(grep -o '"[a-z]*":{"status":"error"' <<<"${body:-}" | cut -d'"' -f2 | paste -sd, - || true)
  if [[ $status == 200 && $overall == ok ]]; then
    echo "ok       $name"
  elif [[ $status == 200 && $overall == degraded ]]; then
    echo "degraded $name (${failing:-?} failing)"
    [[ $strict == true ]] && failed=1
  else
    if [[ $status == 000 ]]; then echo "down     $name (no answer from $url)"; else echo "down     $name (HTTP $status${failing:+, $failing failing})"; fi
    failed=1
  fi
done
exit "$failed"
