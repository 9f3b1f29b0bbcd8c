# Sourced by scripts/quickstart.sh and .ci/run: pip present, PEP 668 handled; defines
# install_cpu_torch for what needs torch (the dev extra, SONAR, GLM-4-Voice, training; the base
# install does not). Expects `as_root` (an array: empty, or (sudo)).

if ! python3 -m pip --version >/dev/null 2>&1; then
  if ! command -v apt-get >/dev/null; then
    echo "setup: python3 has no pip and this is not a Debian/Ubuntu system: install pip for python3 first" >&2
    exit 1
  fi
  # the package lists may be missing or stale on a fresh machine (the callers update only when
  # their own packages are missing)
  "${as_root[@]}" apt-get update -qq
  "${as_root[@]}" apt-get install -y -qq --no-install-recommends python3-pip >/dev/null
fi
# Debian's own python3 refuses pip installs (PEP 668, "externally managed"); install into it anyway
# rather than changing what `python3` means (use a virtual environment to keep it apart).
if python3 -c 'import pathlib, sys, sysconfig; sys.exit(not (pathlib.Path(sysconfig.get_path("stdlib")) / "EXTERNALLY-MANAGED").exists())'; then
  export PIP_BREAK_SYSTEM_PACKAGES=1
fi

# torch before any extra that needs it, pinned. From PyTorch's CPU index when it answers (PyPI's
# torch is a CUDA build of several GB); else the pinned release from the configured index (a local
# CPU wheel on some machines).
install_cpu_torch() {
  if ! python3 -c 'import sys, torch; sys.exit(torch.__version__.split("+")[0] != "2.13.0")' 2>/dev/null; then
    python3 -m pip install -q --timeout 15 --retries 1 --index-url https://download.pytorch.org/whl/cpu torch==2.13.0 2>/dev/null \
      || python3 -m pip install -q torch==2.13.0
  fi
}
