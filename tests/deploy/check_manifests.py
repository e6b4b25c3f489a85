#!/usr/bin/env python3
"""check_manifests.py SRC_DIR SLOTGATE_BIN - the deploy artifacts say what
docs/OPERATIONS.md says they do:

- deploy/kubernetes/*.yaml parse as YAML and hold a Deployment, Service,
  PodDisruptionBudget, ConfigMap and kubernetes.io/tls Secret that select the
  same pods; the Deployment probes /readyz and /healthz on the admin port the
  config sets, its grace period is above the preStop pause plus the config's
  drain timeout, it has pod anti-affinity, and its checksum/config and
  checksum/tls annotations are the SHA-256 of configmap.yaml and
  secret-tls.yaml; the ConfigMap's slotgate.yaml passes
  `slotgate --check-config` (with dev certificates in place of the Secret);
- deploy/docker/Dockerfile is multi-stage on Debian 12, runs as a non-root
  user with a HEALTHCHECK on /healthz, and its runtime stage installs the
  Debian package of every shared library the built slotgate links;
- deploy/grafana/slotgate.json is a dashboard with PromQL targets.
"""
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile

import yaml

SRC, BIN = sys.argv[1], sys.argv[2]
K8S = os.path.join(SRC, "deploy", "kubernetes")
failures = []


def check(cond, msg):
    if not cond:
        failures.append(msg)


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


# ---- Kubernetes -------------------------------------------------------------
docs = {}
for name in sorted(os.listdir(K8S)):
    if not name.endswith(".yaml"):
        continue
    with open(os.path.join(K8S, name)) as f:
        for d in yaml.safe_load_all(f):
            if d is None:
                continue
            check("apiVersion" in d and "kind" in d and "metadata" in d,
                  f"{name}: not a Kubernetes object")
            docs[d["kind"]] = (name, d)
for kind in ("Deployment", "Service", "PodDisruptionBudget", "ConfigMap", "Secret"):
    check(kind in docs, f"no {kind} in deploy/kubernetes")

_, dep = docs["Deployment"]
_, cm = docs["ConfigMap"]
_, sec = docs["Secret"]
cfg = yaml.safe_load(cm["data"]["slotgate.yaml"])
spec = dep["spec"]
pod = spec["template"]["spec"]
labels = spec["template"]["metadata"]["labels"]
check(spec["selector"]["matchLabels"].items() <= labels.items(), "Deployment selector")
for kind in ("Service", "PodDisruptionBudget"):
    sel = docs[kind][1]["spec"]["selector"]
    sel = sel.get("matchLabels", sel)
    check(sel.items() <= labels.items(), f"{kind} does not select the Deployment's pods")
check(sec.get("type") == "kubernetes.io/tls", "Secret is not kubernetes.io/tls")
check(docs["PodDisruptionBudget"][1]["spec"].get("maxUnavailable") == 1, "PDB maxUnavailable")

c = pod["containers"][0]
ports = {p["name"]: p["containerPort"] for p in c["ports"]}
check(ports.get("admin") == cfg["admin"]["port"], "admin containerPort != config admin.port")
check(ports.get("client") == cfg["listen"]["port"], "client containerPort != config listen.port")
check(cfg["admin"]["address"] == "0.0.0.0" and cfg["listen"]["address"] == "0.0.0.0",
      "the pod's config must listen on 0.0.0.0")
check(c["readinessProbe"]["httpGet"]["path"] == "/readyz", "readiness is not /readyz")
check(c["livenessProbe"]["httpGet"]["path"] == "/healthz", "liveness is not /healthz")
for probe in ("readinessProbe", "livenessProbe"):
    check(c[probe]["httpGet"]["port"] in ("admin", cfg["admin"]["port"]), f"{probe} port")
drain_s = cfg.get("limits", {}).get("drain_timeout_ms", 5000) / 1000
pre = c.get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command", [])
pause = int(pre[1]) if len(pre) == 2 and pre[0] == "sleep" else 0
check(pod["terminationGracePeriodSeconds"] > pause + drain_s,
      f"terminationGracePeriodSeconds {pod['terminationGracePeriodSeconds']} <= "
      f"preStop {pause} s + drain {drain_s} s")
check("podAntiAffinity" in pod.get("affinity", {}), "no pod anti-affinity")
ann = spec["template"]["metadata"].get("annotations", {})
check(ann.get("checksum/config") == sha256(os.path.join(K8S, "configmap.yaml")),
      "checksum/config is not sha256(configmap.yaml): " + sha256(os.path.join(K8S, "configmap.yaml")))
check(ann.get("checksum/tls") == sha256(os.path.join(K8S, "secret-tls.yaml")),
      "checksum/tls is not sha256(secret-tls.yaml): " + sha256(os.path.join(K8S, "secret-tls.yaml")))
check(pod["securityContext"].get("runAsNonRoot") is True, "pod may run as root")
mounts = {m["name"]: m["mountPath"] for m in c["volumeMounts"]}
check(all("subPath" not in m for m in c["volumeMounts"]), "subPath mounts never refresh")
check(cfg["tls"]["cert"].startswith(mounts.get("tls", "?") + "/"), "tls.cert is not in the Secret mount")

# The ConfigMap's config validates, with dev certificates standing in.
with tempfile.TemporaryDirectory() as tmp:
    subprocess.run([os.path.join(SRC, "scripts", "gen-certs.sh"), tmp], check=True,
                   stdout=subprocess.DEVNULL)
    text = cm["data"]["slotgate.yaml"].replace(mounts["tls"] + "/tls.crt", tmp + "/server.pem")
    text = text.replace(mounts["tls"] + "/tls.key", tmp + "/server-key.pem")
    path = os.path.join(tmp, "slotgate.yaml")
    with open(path, "w") as f:
        f.write(text)
    r = subprocess.run([BIN, "--check-config", path], capture_output=True, text=True)
    check(r.returncode == 0, "ConfigMap config: " + r.stdout + r.stderr)

# ---- Dockerfile -------------------------------------------------------------
with open(os.path.join(SRC, "deploy", "docker", "Dockerfile")) as f:
    df = f.read()
stages = re.findall(r"^FROM\s+(\S+)", df, re.M)
check(len(stages) >= 2 and all(s.startswith("debian:12") for s in stages),
      f"not multi-stage on debian:12: {stages}")
runtime = df[df.rindex("\nFROM "):]
user = re.findall(r"^USER\s+(\S+)", runtime, re.M)
check(user and user[-1].split(":")[0] not in ("0", "root"), "runtime stage runs as root")
check(re.search(r"^HEALTHCHECK .*?/healthz", runtime, re.M | re.S) is not None, "no HEALTHCHECK on /healthz")


def apt_packages(stage):
    """Package names after `apt-get install` in a stage's RUN lines."""
    joined = stage.replace("\\\n", " ")
    pkgs = set()
    for m in re.finditer(r"apt-get install ([^&\n]*)", joined):
        pkgs.update(w for w in m.group(1).split() if not w.startswith("-"))
    return pkgs


run_pkgs = apt_packages(runtime)
build_pkgs = apt_packages(df[:df.rindex("\nFROM ")])
# Debian packages of the libraries the built binary loads (ldd + dpkg -S).
ldd = subprocess.run(["ldd", BIN], capture_output=True, text=True, check=True).stdout
base = {"libc6", "libgcc-s1", "libstdc++6", "libzstd1", "zlib1g"}  # in debian:12-slim
for lib in re.findall(r"=>\s+(/\S+)", ldd):
    q = subprocess.run(["dpkg", "-S", os.path.realpath(lib)], capture_output=True, text=True)
    if q.returncode != 0:
        q = subprocess.run(["dpkg", "-S", lib], capture_output=True, text=True)
    if q.returncode != 0:
        failures.append(f"no Debian package owns {lib}")
        continue
    pkg = q.stdout.split(":")[0]
    if re.match(r"lib(a|ub|t|l)san\d", pkg):
        continue  # sanitizer builds of the test suite; the image is a Release build
    check(pkg in run_pkgs or pkg in base, f"runtime stage lacks {pkg} (for {lib})")
# The build stage has every -dev package and tool scripts/deps.sh installs to build.
with open(os.path.join(SRC, "scripts", "deps.sh")) as f:
    deps = f.read()
listed = set(re.findall(r"[a-z0-9][a-z0-9.+-]+", deps[deps.index("PKGS=("):deps.index(")", deps.index("PKGS=("))]))
for p in listed:
    if p.endswith("-dev") or p in ("build-essential", "cmake", "ninja-build", "pkg-config",
                                   "protobuf-c-compiler"):
        check(p in build_pkgs, f"build stage lacks {p} (scripts/deps.sh)")

# ---- Grafana ------------------------------------------------------------------
with open(os.path.join(SRC, "deploy", "grafana", "slotgate.json")) as f:
    dash = json.load(f)
exprs = [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]
check(len(exprs) >= 20, "dashboard has too few queries")
check(any("histogram_quantile" in e for e in exprs), "no latency percentiles in the dashboard")

if failures:
    for m in failures:
        print("check_manifests: " + m, file=sys.stderr)
    sys.exit(1)
print(f"check_manifests: ok ({len(docs)} Kubernetes objects, {len(run_pkgs)} runtime packages, "
      f"{len(exprs)} dashboard queries)")
