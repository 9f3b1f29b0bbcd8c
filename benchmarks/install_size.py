#!/usr/bin/env python3
"""Install size and time: `pip install SOURCE` into a fresh virtual environment with an empty
pip cache (every wheel downloaded, or read from a local wheel folder the pip config names), then
the size of its site-packages, the heaviest distributions and whether torch came along.

    python3 benchmarks/install_size.py SOURCE --label before [--extra ''] [--out FILE]

SOURCE is what pip installs (a checkout's path, a wheel, `voicerag`); a run appends its record
to --out (a JSON list), so "before" and "after" go into one file, measured the same way.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HEAVY = ("torch", "transformers", "sentence-transformers", "nvidia-cublas-cu12", "triton")


def tree_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def distributions(python: Path) -> list[dict[str, object]]:
    """Every installed distribution with the bytes of the files its RECORD lists."""
    code = (
        "import json, importlib.metadata as m, pathlib\n"
        "out = []\n"
        "for d in m.distributions():\n"
        "    size = 0\n"
        "    for f in d.files or []:\n"
        "        p = pathlib.Path(d.locate_file(f))\n"
        "        if p.is_file(): size += p.stat().st_size\n"
        "    out.append({'name': d.metadata['Name'], 'version': d.version, 'bytes': size})\n"
        "print(json.dumps(out))\n"
    )
    done = subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=True)
    return sorted(json.loads(done.stdout), key=lambda d: -int(d["bytes"]))


def measure(source: str, label: str) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="voicerag-install-") as tmp:
        venv = Path(tmp) / "venv"
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        python = venv / "bin" / "python"
        env = dict(os.environ, PIP_CACHE_DIR=str(Path(tmp) / "pip-cache"))
        site = Path(
            subprocess.run(
                [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout.strip()
        )
        empty = tree_bytes(site)  # pip and setuptools of the bare venv
        started = time.perf_counter()
        subprocess.run([str(python), "-m", "pip", "install", "-q", source], env=env, check=True)
        seconds = time.perf_counter() - started
        dists = distributions(python)
        names = {str(d["name"]).lower().replace("_", "-") for d in dists}
        return {
            "label": label,
            "source": source,
            "date": datetime.date.today().isoformat(),
            "install_seconds": round(seconds, 1),
            "site_packages_mb": round((tree_bytes(site) - empty) / 1e6, 1),
            "distributions": len(dists),
            "heavy_installed": sorted(name for name in HEAVY if name in names),
            "largest": [
                {"name": d["name"], "version": d["version"], "mb": round(int(d["bytes"]) / 1e6, 1)} for d in dists[:12]
            ],
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", help="what pip installs: a path, a wheel, or a requirement")
    parser.add_argument("--label", required=True)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    record = measure(args.source, args.label)
    print(json.dumps(record, indent=2))
    if args.out:
        previous = json.loads(args.out.read_text(encoding="utf-8")) if args.out.is_file() else []
        args.out.write_text(json.dumps([*previous, record], indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
