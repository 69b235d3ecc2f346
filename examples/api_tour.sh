#!/usr/bin/env sh
# The README's tour with curl, against a running Skalds (make up): create a task, watch it run, change it
# while it runs, cancel it. SKALDS_API_URL and SKALDS_API_KEY override the defaults.
set -eu
API="${SKALDS_API_URL:-http://127.0.0.1:8000}"
KEY="${SKALDS_API_KEY:-}"
ID="tour-$(date +%s)"
call() { curl -sS -H "Content-Type: application/json" ${KEY:+-H "X-API-Key: $KEY"} "$@"; echo; }

echo "== create a stream task (StreamWorker from skalds/examples.py)"
call -X POST "$API/api/tasks" -d '{"className": "StreamWorker", "id": "'"$ID"'", "attachments": {"rtspUrl": "rtsp://camera-7.local/stream", "fps": 2}}'
echo "== wait until it runs (the dispatcher assigns it, the node starts a worker process)"
for _ in $(seq 1 60); do
  call "$API/api/tasks/$ID" | grep -q '"lifecycleStatus":"Running"' && break
  sleep 0.5
done
call "$API/api/tasks/$ID"
echo "== hot update: 10 frames per second, without a restart"
call -X PUT "$API/api/tasks/$ID/attachments" -d '{"attachments": {"rtspUrl": "rtsp://camera-7.local/stream", "fps": 10}}'
echo "== a bad value is refused naming the field (422)"
call -X PUT "$API/api/tasks/$ID/attachments" -d '{"attachments": {"fps": 0}}'
echo "== pause, resume, cancel"
call -X POST "$API/api/tasks/$ID/pause"
sleep 4  # the worker pauses at its next frame; the monitor records Paused within a cycle
call "$API/api/tasks/$ID"
call -X POST "$API/api/tasks/$ID/resume"
call -X POST "$API/api/tasks/$ID/cancel"
sleep 2
call "$API/api/tasks/$ID"
