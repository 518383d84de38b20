#!/usr/bin/env bash
# Turns vLLM's KV-cache events on for an existing Deployment, the way kvbroker's Kubernetes discovery reads them:
#   - --kv-events-config with the zmq publisher, the PUB endpoint, the replay endpoint and a per-pod topic
#     (kv@$(POD_IP)@MODEL; Kubernetes fills in POD_IP from the env entry the patch adds);
#   - container ports for every data-parallel rank (vLLM adds the rank to both ports);
#   - the pod label kvbroker.io/kv-events=enabled and the kvbroker.io/* annotations discovery reads.
# Prints the strategic merge patch on stdout, then applies it with kubectl when kubectl is on PATH (and neither
# --dry-run nor --file is given). Changing the pod template rolls the Deployment's pods.
#
# Usage: scripts/enable-kv-events.sh [options] NAMESPACE DEPLOYMENT
#   --container NAME     the vLLM container (default: the first)
#   --model NAME         served model name (default: --served-model-name, else --model, else the argument after serve)
#   --events-port N      PUB port of rank 0 (default 5557)
#   --replay-port N      replay ROUTER port of rank 0 (default 5600; at least the number of ranks above --events-port)
#   --buffer-steps N     batches vLLM keeps for replay (default 10000)
#   --file FILE          read the Deployment from FILE (kubectl get -o json output) instead of the cluster; print only
#   --dry-run            print the patch, do not apply it
# Needs bash and python3 (for JSON); kubectl to read or apply.
set -euo pipefail

container="" model="" events_port=5557 replay_port=5600 buffer_steps=10000 file="" dry_run=0
usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2; }
while [[ $# -gt 0 ]]; do
  case "$1" in
    --container) container="$2"; shift 2 ;;
    --model) model="$2"; shift 2 ;;
    --events-port) events_port="$2"; shift 2 ;;
    --replay-port) replay_port="$2"; shift 2 ;;
    --buffer-steps) buffer_steps="$2"; shift 2 ;;
    --file) file="$2"; shift 2 ;;
    --dry-run) dry_run=1; shift ;;
    -h|--help) usage ;;
    --*) echo "enable-kv-events: unknown option $1" >&2; usage ;;
    *) break ;;
  esac
done
[[ $# -eq 2 ]] || usage
namespace="$1" deployment="$2"
command -v python3 >/dev/null || { echo "enable-kv-events: python3 is needed to edit the JSON" >&2; exit 1; }

have_kubectl=0
command -v kubectl >/dev/null && have_kubectl=1
if [[ -n "$file" ]]; then
  json="$(cat "$file")"
elif [[ $have_kubectl -eq 1 ]]; then
  json="$(kubectl get deployment "$deployment" -n "$namespace" -o json)"
else
  echo "enable-kv-events: kubectl is not on PATH; give the Deployment with --file" >&2
  exit 1
fi

patch="$(DEPLOYMENT_JSON="$json" python3 - "$container" "$model" "$events_port" "$replay_port" "$buffer_steps" <<'PY'
import json, os, sys

container_name, model, events_port, replay_port, buffer_steps = sys.argv[1:6]
events_port, replay_port, buffer_steps = int(events_port), int(replay_port), int(buffer_steps)

def fail(message):
    print("enable-kv-events: " + message, file=sys.stderr)
    sys.exit(1)

deployment = json.loads(os.environ["DEPLOYMENT_JSON"])
containers = deployment["spec"]["template"]["spec"]["containers"]
if container_name:
    matches = [c for c in containers if c["name"] == container_name]
    if not matches:
        fail("no container named %s (there are: %s)" % (container_name, ", ".join(c["name"] for c in containers)))
    container = matches[0]
else:
    container = containers[0]

# The flags live in args, or in command when there are no args (command: [vllm, serve, MODEL, ...]).
field = "args" if container.get("args") else "command"
argv = list(container.get(field) or [])

def flag(names):
    for i, arg in enumerate(argv):
        for name in names:
            if arg == name and i + 1 < len(argv):
                return argv[i + 1]
            if arg.startswith(name + "="):
                return arg[len(name) + 1:]
    return None

if not model:
    model = flag(["--served-model-name"]) or flag(["--model"])
    if not model and "serve" in argv:
        after = argv[argv.index("serve") + 1:]
        model = after[0] if after and not after[0].startswith("-") else None
if not model:
    fail("cannot tell the served model name from the container's %s; give --model" % field)

local = int(flag(["--data-parallel-size-local", "-dpl"]) or flag(["--data-parallel-size", "-dp"]) or 1)
start = int(flag(["--data-parallel-start-rank", "-dpr"]) or 0)
last_rank = start + local - 1
if replay_port < events_port + last_rank + 1 and events_port < replay_port + last_rank + 1:
    fail("replay ports %d..%d overlap the events ports %d..%d: vLLM adds the rank to both; use --replay-port %d"
         % (replay_port + start, replay_port + last_rank, events_port + start, events_port + last_rank,
            events_port + last_rank + 1))

# Drop earlier event flags, so the patch can be applied twice and replaces an older setup.
kept, skip = [], False
for arg in argv:
    if skip:
        skip = False
    elif arg == "--kv-events-config":
        skip = True
    elif arg.startswith("--kv-events-config=") or arg == "--enable-kv-cache-events":
        pass
    else:
        kept.append(arg)
config = {"enable_kv_cache_events": True, "publisher": "zmq", "endpoint": "tcp://*:%d" % events_port,
          "replay_endpoint": "tcp://*:%d" % replay_port, "topic": "kv@$(POD_IP)@%s" % model,
          "buffer_steps": buffer_steps}
kept += ["--kv-events-config", json.dumps(config)]

ports = []
for rank in range(start, last_rank + 1):
    ports.append({"name": "kv-events-%d" % rank, "containerPort": events_port + rank, "protocol": "TCP"})
    ports.append({"name": "kv-replay-%d" % rank, "containerPort": replay_port + rank, "protocol": "TCP"})

annotations = {
    "kvbroker.io/model": model,
    "kvbroker.io/events-port": str(events_port),
    "kvbroker.io/replay-port": str(replay_port),
    "kvbroker.io/data-parallel-size": str(local),
    "kvbroker.io/data-parallel-start-rank": str(start),
    "kvbroker.io/topic": "kv@{podIP}@{model}",
    "kvbroker.io/container": container["name"],
}
patch = {"spec": {"template": {
    "metadata": {"labels": {"kvbroker.io/kv-events": "enabled"}, "annotations": annotations},
    "spec": {"containers": [{
        "name": container["name"],
        field: kept,
        "env": [{"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}],
        "ports": ports,
    }]},
}}}
print(json.dumps(patch, indent=2))
PY
)"
echo "$patch"
if [[ $dry_run -eq 1 || -n "$file" ]]; then
  exit 0
fi
if [[ $have_kubectl -eq 1 ]]; then
  kubectl patch deployment "$deployment" -n "$namespace" --type strategic -p "$patch"
fi
