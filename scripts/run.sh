#!/usr/bin/env bash
# Runs git-controller.
#
#   scripts/run.sh            with KUBECONFIG pointing at a reachable cluster: installs the CRDs
#                             and runs the controller against it (all namespaces).
#   scripts/run.sh            without one: a local demo. Starts kubelite (a real API server,
#                             ../shared/kubelite), makes a Git repository in /tmp, syncs a
#                             Deployment from it, bumps its image with kubectl and shows the
#                             commit the controller writes back; then keeps running.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$PWD
shared=${SHARED_DIR:-$root/../shared}

cargo build --release --quiet
# Where cargo put it: CARGO_TARGET_DIR, build.target-dir in a cargo config, or ./target.
target_dir=$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
bin=${target_dir:-$root/target}/release/git-controller
kubectl=$(command -v kubectl || echo /opt/helm/bin/kubectl)

if [ -n "${KUBECONFIG:-}" ] && "$kubectl" version >/dev/null 2>&1; then
  "$bin" crds | "$kubectl" apply -f -
  exec "$bin" run --cache-dir "${GIT_CONTROLLER_CACHE_DIR:-$HOME/.cache/git-controller}" "$@"
fi

echo "No reachable cluster in KUBECONFIG: running the local demo."
[ -x "$shared/kubelite/kubelite.sh" ] || { echo "no cluster and no ../shared/kubelite; set KUBECONFIG" >&2; exit 1; }
export KUBELITE_PORT=${KUBELITE_PORT:-26443} KUBELITE_ETCD_PORT=${KUBELITE_ETCD_PORT:-22379}
export KUBELITE_STATE=${KUBELITE_STATE:-/tmp/git-controller-demo/kubelite}
"$shared/kubelite/kubelite.sh" start >/dev/null
export KUBECONFIG=$KUBELITE_STATE/kubeconfig

demo=/tmp/git-controller-demo
rm -rf "$demo/remote.git" "$demo/work" "$demo/cache"
git init -q --bare -b main "$demo/remote.git"
git clone -q "$demo/remote.git" "$demo/work" 2>/dev/null
mkdir -p "$demo/work/apps"
cat > "$demo/work/apps/web.yaml" <<'YAML'
# The web frontend. Replicas come from Git; the image is bumped in the cluster and written back.
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: demo
spec:
  replicas: 2 # change me in Git
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
        - name: web
          image: nginx:1.25 # bumped with kubectl set image
YAML
git -C "$demo/work" add -A
git -C "$demo/work" -c user.name=demo -c user.email=demo@localhost commit -qm "web frontend"
git -C "$demo/work" push -q origin main

"$bin" crds | "$kubectl" apply -f - >/dev/null
"$kubectl" create namespace demo --dry-run=client -o yaml | "$kubectl" apply -f - >/dev/null
cat <<YAML | "$kubectl" apply -f - >/dev/null
apiVersion: gitcontroller.io/v1alpha1
kind: GitRepository
metadata: {name: demo, namespace: demo}
spec:
  url: file://$demo/remote.git
  interval: 10s
---
apiVersion: gitcontroller.io/v1alpha1
kind: SyncRule
metadata: {name: deployments-from-git, namespace: demo}
spec:
  repositoryRef: {name: demo}
  apiGroups: [apps]
  kinds: [Deployment]
  namespaces: [demo]
  syncTo: kubernetes
---
apiVersion: gitcontroller.io/v1alpha1
kind: SyncRule
metadata: {name: images-to-git, namespace: demo}
spec:
  repositoryRef: {name: demo}
  apiGroups: [apps]
  kinds: [Deployment]
  namespaces: [demo]
  filters: [/spec/template/spec/containers]
  syncTo: git
YAML

# The remote is a path on this machine: local URLs are allowed for the demo only.
"$bin" run --namespace demo --allow-local-urls --cache-dir "$demo/cache" --metrics-addr 127.0.0.1:18080 &
pid=$!
trap 'kill $pid 2>/dev/null; "$shared/kubelite/kubelite.sh" stop >/dev/null 2>&1' EXIT
for _ in $(seq 100); do "$kubectl" -n demo get deploy web >/dev/null 2>&1 && break; sleep 0.2; done
echo; echo "== The Deployment from Git is in the cluster:"
"$kubectl" -n demo get deploy web
echo; echo "== kubectl set image deployment/web web=nginx:1.27 (a change made in the cluster)"
"$kubectl" -n demo set image deployment/web web=nginx:1.27 >/dev/null
for _ in $(seq 100); do git -C "$demo/remote.git" show main:apps/web.yaml | grep -q 1.27 && break; sleep 0.2; done
echo; echo "== ...is written back to Git, one line changed:"
git -C "$demo/remote.git" log -1 -p --format='%h %an: %s' main | sed -n '1,40p'
cat <<TXT

The controller keeps running (metrics on http://127.0.0.1:18080/metrics). Try, in another shell:
  export KUBECONFIG=$KUBECONFIG
  kubectl -n demo scale deployment/web --replicas=5     # reverted from Git
  kubectl -n demo get gitrepository demo                # Ready, last synced commit
  git -C $demo/remote.git log --oneline main
Ctrl-C stops the demo.
TXT
wait $pid
