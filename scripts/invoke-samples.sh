#!/usr/bin/env bash
# Every sample in events/ through `cargo lambda watch` and `cargo lambda invoke`, as docs/operations.md (Invoke locally)
# shows, with events/local.env against the emulator. Each sample goes to the function that reads
# its source; a malformed-* sample must come back as Permanent.InvalidEvent (a truncated one, not
# JSON at all, is refused by the Lambda runtime before the handler), every other one as a response. Exits 1 naming each sample that did not.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
cargo_lambda="$(bash scripts/ensure-cargo-lambda.sh)/cargo-lambda"
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
moto_port="$(free_port)"
watch_port="$(free_port)"
work="$(mktemp -d)"
pids=()
cleanup() { for p in "${pids[@]}"; do kill -- "-$p" 2>/dev/null || kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

AUTONOMIC_LOCAL_KUBECONFIG="$work/kubeconfig" setsid bash scripts/local-emulator.sh "$moto_port" 2>"$work/emulator.log" &
pids+=($!)
# The emulator builds the Kubernetes API stand-in first (a no-op after the tests' build).
for _ in $(seq 3000); do grep -q "emulator ready" "$work/emulator.log" && break; sleep 0.2; done
grep -q "emulator ready" "$work/emulator.log" || { echo "the emulator did not start:" >&2; cat "$work/emulator.log" >&2; exit 1; }

# The documented env file, pointed at this run's emulator and Kubernetes API stand-in.
sed -e "s|^AWS_ENDPOINT_URL=.*|AWS_ENDPOINT_URL=http://127.0.0.1:$moto_port|" \
  -e "s|^ROLLOUT_CLUSTERS=.*|ROLLOUT_CLUSTERS='{\"clusters\": [{\"name\": \"local\", \"kubeconfig\": \"$work/kubeconfig\", \"namespaces\": [\"shop\"]}]}'|" \
  events/local.env >"$work/local.env"
setsid "$cargo_lambda" lambda watch --env-file "$work/local.env" -A 127.0.0.1 -P "$watch_port" >"$work/watch.log" 2>&1 &
pids+=($!)
for _ in $(seq 300); do grep -q "starting Runtime server" "$work/watch.log" && break; sleep 0.2; done

function_for() {
  case "$1" in
    *health-alarm* | *-rds-*) echo aurora-promoter ;;
    *sqs*) echo cdn-invalidator ;;
    *alarm* | *sweep* | *lambda-* | *sns-*) echo asg-scaler ;;
    *ecr*) echo pipeline-trigger k8s-rollout ;;
  esac
}

failed=()
count=0
for sample in events/*.json; do
  name="$(basename "$sample" .json)"
  functions="$(function_for "$name")"
  if [ -z "$functions" ]; then
    echo "-- $name: no function reads this source yet" >&2
    continue
  fi
  for function in $functions; do
    count=$((count + 1))
    # The first invocation of a function waits for cargo lambda watch to build it; a function that
    # does not build or start never answers, so every invocation has a time limit.
    out="$(timeout 600 "$cargo_lambda" lambda invoke "$function" --data-file "$sample" \
      --invoke-address 127.0.0.1 --invoke-port "$watch_port" 2>&1)" && status=0 || status=$?
    case "$name" in
      # Not JSON at all: the Lambda runtime refuses it before the handler (as the Invoke API would).
      *truncated*) want="lambda_runtime::deserializer::DeserializeError" ; got="$(grep -o 'Error: [A-Za-z_:.]*' <<<"$out" | head -1 | cut -d' ' -f2)" ;;
      malformed-*) want="Permanent.InvalidEvent" ; got="$(grep -o 'Error: [A-Za-z.]*' <<<"$out" | head -1 | cut -d' ' -f2)" ;;
      *) want="response" ; { [ "$status" = 0 ] && ! grep -q '^Error:' <<<"$out"; } && got=response || got="$(head -3 <<<"$out" | tr '\n' ' ')" ;;
    esac
    if [ "$got" = "$want" ]; then
      echo "ok $function $name: $want" >&2
    else
      echo "FAILED $function $name: wanted $want, got: $got" >&2
      failed+=("$function:$name")
    fi
  done
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "cargo lambda watch log:" >&2; tail -40 "$work/watch.log" >&2
  echo "${#failed[@]} of $count samples failed: ${failed[*]}" >&2
  exit 1
fi
echo "all $count samples answered as expected through cargo lambda watch" >&2
