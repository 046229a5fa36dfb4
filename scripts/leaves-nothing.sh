#!/usr/bin/env bash
# Runs the README's test command (or the command given) with no KUBECONFIG, so the tests start
# their own kubelite, then checks that the run left nothing behind: no process started for a
# test cluster (API server, etcd, supervisor) still runs, and no test-cluster state remains.
#
#   scripts/leaves-nothing.sh                      # cargo test --workspace
#   scripts/leaves-nothing.sh cargo nextest run    # any other test command
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# Where crates/testkit/src/run_cluster.rs keeps each run's cluster (std::env::temp_dir()).
base=${TMPDIR:-/tmp}
base=${base%/}/gitcontroller-test-clusters

# Processes whose command line names a test cluster's directory: etcd (--data-dir), the API
# server (--tls-cert-file), the supervisor (its arguments).
leftover_processes() {
  local dir cmd
  for dir in /proc/[0-9]*; do
    cmd=$(tr '\0' ' ' 2>/dev/null <"$dir/cmdline") || continue
    [[ $cmd == *"$base/"* ]] && printf '%s %s\n' "${dir#/proc/}" "${cmd:0:160}"
  done
  return 0
}
leftover_state() { ls -A "$base" 2>/dev/null || true; }

if [[ -n $(leftover_processes) || -n $(leftover_state) ]]; then
  echo "leaves-nothing: a test cluster is in use already (another run?); not checking" >&2
  leftover_processes >&2
  exit 2
fi
[[ $# -gt 0 ]] || set -- cargo test --workspace
status=0
env -u KUBECONFIG "$@" || status=$?

# The supervisor stops the servers within about a second of the run's end; allow ten.
for _ in $(seq 100); do
  [[ -z $(leftover_processes) && -z $(leftover_state) ]] && break
  sleep 0.1
done
processes=$(leftover_processes)
state=$(leftover_state)
if [[ -n $processes || -n $state ]]; then
  echo "leaves-nothing: FAILED: the test run left a cluster behind" >&2
  [[ -z $processes ]] || printf 'still running:\n%s\n' "$processes" >&2
  [[ -z $state ]] || printf 'state left in %s:\n%s\n' "$base" "$state" >&2
  exit 1
fi
echo "leaves-nothing: no test-cluster process and no state under $base remain"
exit "$status"
