#!/usr/bin/env bash
# Broadcast through the REST API with curl and openssl only (the example of docs/rest-api.md).
#   rest_send.sh <site URL> <access key> <hub> <target> <JSON arguments>
set -euo pipefail
BASE="$1" KEY="$2" HUB="$3" TARGET="$4" ARGUMENTS="$5"

URL="$BASE/api/hubs/$HUB/:send"
b64url() { openssl base64 -A | tr '+/' '-_' | tr -d '='; }
HEADER=$(printf '{"alg":"HS256","typ":"JWT"}' | b64url)
PAYLOAD=$(printf '{"aud":"%s","exp":%d}' "$URL" $(( $(date +%s) + 300 )) | b64url)
SIGNATURE=$(printf '%s.%s' "$HEADER" "$PAYLOAD" | openssl dgst -sha256 -hmac "$KEY" -binary | b64url)

curl -sS -o /dev/null -w '%{http_code}\n' -X POST "$URL?api-version=2022-06-01" \
  -H "Authorization: Bearer $HEADER.$PAYLOAD.$SIGNATURE" \
  -H "Content-Type: application/json" \
  -d "{\"target\": \"$TARGET\", \"arguments\": $ARGUMENTS}"
