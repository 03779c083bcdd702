#!/usr/bin/env bash
# Checks a NEXUS /metrics exposition with promtool (Debian: apt-get install prometheus): a parse error
# fails, and so does any lint problem except the three that CONTRACT.md's fixed metric names cannot avoid:
#   cortex_request_count  a counter without "_total", and a non-histogram ending in "_count"
#   cortex_agent_count    a gauge ending in "_count"
# (renaming them would break every dashboard and alert built on the contract). Also fails on an empty
# exposition or one without the contract's metrics.
#
#   scripts/check-metrics.sh [URL]      (without URL: the exposition on stdin)
set -euo pipefail

waived=(
  'cortex_request_count counter metrics should have "_total" suffix'
  'cortex_request_count non-histogram and non-summary metrics should not have "_count" suffix'
  'cortex_agent_count non-histogram and non-summary metrics should not have "_count" suffix'
)
required=(
  'cortex_request_count counter'
  'cortex_response_time histogram'
  'cortex_active_commands gauge'
  'cortex_agent_count gauge'
)

if [[ ${1:-} == -h || ${1:-} == --help ]]; then
  sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'
  exit 0
fi
command -v promtool >/dev/null || { echo "check-metrics: promtool is not installed (apt-get install prometheus)" >&2; exit 2; }

body=$(mktemp)
trap 'rm -f "$body"' EXIT
if [[ -n ${1:-} ]]; then
  curl -fsS -m 10 "$1" >"$body" || { echo "check-metrics: cannot read $1" >&2; exit 1; }
else
  cat >"$body"
fi
if [[ ! -s $body ]]; then
  echo "check-metrics: empty exposition" >&2
  exit 1
fi

status=0
report=$(promtool check metrics <"$body" 2>&1) || status=$?
# promtool 2.42: 0 = clean, 3 = lint problems only (one per line), anything else = could not parse.
if [[ $status -ne 0 && $status -ne 3 ]]; then
  echo "check-metrics: promtool could not parse the exposition (exit $status):" >&2
  echo "$report" >&2
  exit 1
fi
problems=()
while IFS= read -r line; do
  [[ -z $line ]] && continue
  skip=false
  for w in "${waived[@]}"; do [[ $line == "$w" ]] && skip=true; done
  [[ $skip == true ]] || problems+=("$line")
done <<<"$report"
if [[ ${#problems[@]} -gt 0 ]]; then
  echo "check-metrics: promtool lint problems:" >&2
  printf '  %s\n' "${problems[@]}" >&2
  exit 1
fi
for r in "${required[@]}"; do
  grep -qx "# TYPE $r" "$body" || { echo "check-metrics: missing \"# TYPE $r\"" >&2; exit 1; }
done
echo "check-metrics: ok ($(grep -c '^# TYPE ' "$body") metrics; waived: the contract's cortex_request_count and cortex_agent_count names)"
