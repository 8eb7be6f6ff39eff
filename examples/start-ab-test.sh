#!/usr/bin/env bash
# Starts an A/B test of two registered versions of a model through the gateway's admin API:
# arm A = VERSION_A (control), arm B = VERSION_B with PERCENT of the traffic, both served
# in-process from models:/MODEL/VERSION. Then marks VERSION_B as the challenger in the registry.
#
#   ABGATE_ADMIN_URL=http://127.0.0.1:8081 ABGATE_ADMIN_TOKEN=... MLFLOW_TRACKING_URI=http://127.0.0.1:5000 \
#     examples/start-ab-test.sh hyatt_booking_model 7 8 20
#
# For the fully automatic path, tag the version instead and let `abgate controller` do the rest:
#   curl -X POST "$MLFLOW_TRACKING_URI/api/2.0/mlflow/model-versions/set-tag" -H 'Content-Type: application/json' \
#     -d '{"name":"hyatt_booking_model","version":"8","key":"ab_test_candidate","value":"true"}'
set -euo pipefail
MODEL=${1:?model name}
A=${2:?control version}
B=${3:?candidate version}
PERCENT=${4:-10}
: "${ABGATE_ADMIN_URL:?set ABGATE_ADMIN_URL}" "${ABGATE_ADMIN_TOKEN:?set ABGATE_ADMIN_TOKEN}"
NAME="${MODEL}-v${B}-vs-v${A}"
BODY=$(cat <<JSON
{"name": "$NAME", "model": "$MODEL", "routing_mode": "user_hash", "control": "A",
 "arms": [{"name": "A", "version": "$A", "weight": $((100 - PERCENT))},
          {"name": "B", "version": "$B", "weight": $PERCENT}],
 "metrics": [{"name": "booked", "type": "binary", "primary": true}],
 "guardrails": {"max_error_rate": 0.02, "max_p99_latency_ms": 250}}
JSON
)
curl -sf -X POST "$ABGATE_ADMIN_URL/api/v1/experiments" -H 'Content-Type: application/json' \
  -H "Authorization: Bearer $ABGATE_ADMIN_TOKEN" -d "$BODY"
echo
if [ -n "${MLFLOW_TRACKING_URI:-}" ]; then
  curl -sf -X POST "$MLFLOW_TRACKING_URI/api/2.0/mlflow/registered-models/alias" -H 'Content-Type: application/json' \
    -d "{\"name\": \"$MODEL\", \"alias\": \"challenger\", \"version\": \"$B\"}" >/dev/null
fi
echo "started $NAME: A=v$A $((100 - PERCENT))%, B=v$B $PERCENT%."
echo "watch:   $ABGATE_ADMIN_URL/dashboard#token=… (in a browser), or"
echo "         curl -s -H \"Authorization: Bearer \$ABGATE_ADMIN_TOKEN\" $ABGATE_ADMIN_URL/api/v1/experiments/$NAME/results"
echo "promote: abgate promote --admin-url $ABGATE_ADMIN_URL --experiment $NAME --winner auto"
