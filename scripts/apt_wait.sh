# Sourced by scripts/quickstart.sh and .ci/run. `apt_get ARGS...` runs apt-get (as root, with
# `as_root`), waiting up to APT_LOCK_WAIT seconds (default 600) while another package manager
# holds dpkg's or apt's lock, as the automatic updates of a fresh cloud machine often do.
apt_get() {
  local waited=0 limit="${APT_LOCK_WAIT:-600}" out status
  while :; do
    status=0
    out="$("${as_root[@]}" apt-get -o DPkg::Lock::Timeout=0 "$@" 2>&1)" || status=$?
    if [ "$status" -eq 0 ]; then
      [ -z "$out" ] || printf '%s\n' "$out"
      return 0
    fi
    if ! grep -qiE 'could not get lock|unable to acquire the dpkg frontend lock|is another process using it' <<<"$out" \
      || [ "$waited" -ge "$limit" ]; then
      printf '%s\n' "$out" >&2
      [ "$waited" -lt "$limit" ] || echo "apt: another package manager still holds the lock after ${waited}s" >&2
      return "$status"
    fi
    [ "$waited" -gt 0 ] || echo "      waiting for another package manager (apt/dpkg) to finish (up to ${limit}s)…"
    sleep 5
    waited=$((waited + 5))
  done
}
