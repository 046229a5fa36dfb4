#!/usr/bin/env bash
# What one GitRepository status write costs the API server, by the size of its inventory.
#
# Starts a kubelite of its own (ports 6543/2479, state under /tmp, stopped at the end), applies
# the CRDs from crds/, and for each inventory size writes the status 20 times as the controller
# does (server-side apply of the whole status with force, as field manager git-controller),
# then 20 JSON merge patches of `lastSyncedCommit` alone, then 20 GETs, reading the API server's
# and etcd's CPU time from /proc around each batch. Prints CPU-ms per request.
#
# Run: scripts/apiserver-status-cost.sh [sizes...]   (default: 20 500 5000)
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
shared=${SHARED:-$root/../shared}
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(20 500 5000)

export KUBELITE_PORT=${KUBELITE_PORT:-6543} KUBELITE_ETCD_PORT=${KUBELITE_ETCD_PORT:-2479}
export KUBELITE_STATE=${KUBELITE_STATE:-/tmp/gitcontroller-status-cost}
work=$(mktemp -d)
stop() {
    KUBELITE_WIPE=1 "$shared/kubelite/kubelite.sh" stop >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap stop EXIT
"$shared/kubelite/kubelite.sh" start >"$work/start.log" 2>&1 || { cat "$work/start.log"; exit 1; }
export KUBECONFIG=$KUBELITE_STATE/kubeconfig

kubectl config view --raw -o jsonpath='{.users[0].user.client-certificate-data}' | base64 -d >"$work/crt"
kubectl config view --raw -o jsonpath='{.users[0].user.client-key-data}' | base64 -d >"$work/key"
kubectl config view --raw -o jsonpath='{.clusters[0].cluster.certificate-authority-data}' | base64 -d >"$work/ca"
server=$(kubectl config view --raw -o jsonpath='{.clusters[0].cluster.server}')
kubectl apply --server-side -f "${CRDS:-$root/crds/gitcontroller.io.yaml}" >/dev/null
kubectl wait --for=condition=Established crd/gitrepositories.gitcontroller.io >/dev/null
kubectl create namespace status-cost >/dev/null

apiserver=$(cat "$KUBELITE_STATE/apiserver.pid")
etcd=$(cat "$KUBELITE_STATE/etcd.pid")
ticks=$(getconf CLK_TCK)
cpu_ms() { awk -v t="$ticks" '{print int(($14 + $15) * 1000 / t)}' "/proc/$1/stat"; }
request() {
    curl -sf -o /dev/null --cacert "$work/ca" --cert "$work/crt" --key "$work/key" "$@"
}
# Runs "$@" 20 times; prints the API server's and etcd's CPU-ms per run.
per_request() {
    local label=$1
    shift
    local a0 e0
    a0=$(cpu_ms "$apiserver")
    e0=$(cpu_ms "$etcd")
    for n in $(seq 0 19); do "$@" "$n"; done
    printf '  %-44s API server %6.1f CPU-ms, etcd %5.1f CPU-ms per request\n' "$label" \
        "$(echo "($(cpu_ms "$apiserver") - $a0) / 20" | bc -l)" \
        "$(echo "($(cpu_ms "$etcd") - $e0) / 20" | bc -l)"
}

for size in "${sizes[@]}"; do
    name=r$size
    kubectl apply --server-side -f - >/dev/null <<EOF
apiVersion: gitcontroller.io/v1alpha1
kind: GitRepository
metadata: {name: $name, namespace: status-cost}
spec: {url: "git://127.0.0.1/example.git", branch: main}
EOF
    url="$server/apis/gitcontroller.io/v1alpha1/namespaces/status-cost/gitrepositories/$name/status"
    python3 - "$size" "$name" "$work" <<'EOF'
import json, sys
size, name, work = int(sys.argv[1]), sys.argv[2], sys.argv[3]
inventory = [{"group": "", "kind": "ConfigMap", "name": f"object-{i:05d}", "namespace": "a-team-namespace"}
             for i in range(size)]
for n in range(20):
    status = {"lastSyncedCommit": f"{n:040x}", "inventory": inventory, "conditions": []}
    with open(f"{work}/apply-{n}.json", "w") as f:
        json.dump({"apiVersion": "gitcontroller.io/v1alpha1", "kind": "GitRepository",
                   "metadata": {"name": name, "namespace": "status-cost"}, "status": status}, f)
    with open(f"{work}/merge-{n}.json", "w") as f:
        json.dump({"status": {"lastSyncedCommit": f"{n + 100:040x}"}}, f)
EOF
    apply() {
        request -X PATCH -H 'Content-Type: application/apply-patch+yaml' \
            --data-binary "@$work/apply-$1.json" "$url?fieldManager=git-controller&force=true"
    }
    merge() {
        request -X PATCH -H 'Content-Type: application/merge-patch+json' \
            --data-binary "@$work/merge-$1.json" "$url?fieldManager=git-controller"
    }
    get() { request "$url"; }
    echo "inventory of $size objects:"
    per_request "status written (server-side apply, whole)" apply
    per_request "lastSyncedCommit alone (merge patch)" merge
    per_request "GET" get
done
