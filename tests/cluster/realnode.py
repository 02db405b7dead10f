"""A real node: containerd (Debian's, with its CRI plugin, runc and the CNI bridge),
the kubelet and kube-proxy (from ``hyperkube``) and CoreDNS, all in the node's own
network namespace (:mod:`nodenet`), registered with the harness's API server.

Settings this machine needs (it is cgroup v1, "hybrid", and a sandbox):

* kubelet: ``failCgroupV1: false``, ``cgroupDriver: cgroupfs``, ``cgroupsPerQOS: false``
  and no node-allocatable enforcement; every pod's cgroup goes under one parent,
  ``/mindzoo-node-<pid>``, which the harness creates and removes;
* containerd: ``restrict_oom_score_adj`` (the sandbox lacks CAP_SYS_RESOURCE, so
  raising a pod's OOM score would fail every sandbox); its image store is kept in the
  tool cache so images are imported once, its state is per run;
* cluster DNS is CoreDNS as a process on the node's address (``clusterDNS``), with only
  the Kubernetes plugin: nothing is forwarded off this machine.

Only one real node runs at a time on a machine (its address and containerd store are
fixed): a second harness fails with one line saying so.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import ssl
import subprocess
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import hoststate
from nodenet import HOST_IP, NODE_IP, POD_CIDR, NodeNetwork
from procs import HarnessError, Process, Tools, cache_bin, run, spawn, wait

NODE_NAME = "real-node-0"
#: Every pod of the real node gets this label's node (tests select it with a nodeSelector if needed).
NODE_LABEL = "mindzoo.test/real-node"
KUBELET_PORT = 10250
PAUSE_IMAGE = "localhost/mindzoo-pause:3.10"


def containerd_root() -> Path:
    """containerd's image store, kept between runs beside the built tools (never in the repository)."""
    return cache_bin().parent / "containerd"


def state_dir(pid: int | None = None) -> Path:
    """The node's sockets, the kubelet's root (pod volumes) and containerd's state: a short path, since a unix
    socket path has at most 104 bytes (the kubelet's and containerd's sockets live there) and a test's
    workdir is longer. Removed when the node stops."""
    return Path(f"/var/lib/mindzoo-node-{pid or os.getpid()}")


def footprint(workdir: Path, pid: int | None = None) -> dict:
    """Where a node started in ``workdir`` (by process ``pid``, default this one) leaves traces on the machine:
    ``folders`` it mounts under, ``markers`` naming its processes (command lines), its ``cgroup``
    (hoststate.HostState.leftovers)."""
    state = state_dir(pid)
    return {"folders": [workdir, containerd_root(), state], "markers": [str(workdir), str(state)],
            "cgroup": state.name}


@dataclass
class RealNode:
    """The node's processes and folders. :meth:`start` it after the control plane; :meth:`stop` it."""

    tools: Tools
    workdir: Path
    net: NodeNetwork
    processes: list[Process] = field(default_factory=list)
    _lock: object = None

    @property
    def state(self) -> Path:
        return state_dir()

    @property
    def cgroup(self) -> str:
        return footprint(self.workdir)["cgroup"]

    @property
    def socket(self) -> Path:
        return state_dir() / "containerd.sock"

    # ---- start

    def start(self, *, kubeconfigs: dict[str, Path], timeout: float) -> None:
        self._take_lock()
        for sub in ("containerd", "kubelet", "cni/net.d", "cni/ipam", "logs"):
            (self.workdir / sub).mkdir(parents=True, exist_ok=True)
        state_dir().mkdir(mode=0o700, exist_ok=True)
        self._make_cgroup()
        self._start_containerd(timeout)
        self._start_kubelet(kubeconfigs["kubelet"])
        self._start_kube_proxy(kubeconfigs["kube-proxy"])
        self._start_coredns(kubeconfigs["coredns"], timeout)

    def _take_lock(self) -> None:
        lock_path = containerd_root().parent / "realnode.lock"
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        handle = lock_path.open("a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise HarnessError(f"the real node cannot start: another one is running on this machine "
                               f"(it holds {lock_path})") from None
        self._lock = handle

    def _make_cgroup(self) -> None:
        """The parent of every pod's cgroup, in each v1 controller the kubelet checks."""
        base = Path("/sys/fs/cgroup")
        for controller in ("cpu", "cpuacct", "cpuset", "memory", "pids", "systemd", "devices", "freezer", "blkio",
                           "hugetlb"):
            hierarchy = base / controller
            if hierarchy.is_dir():
                try:
                    (hierarchy / self.cgroup).mkdir(exist_ok=True)
                except OSError as exc:
                    raise HarnessError(f"the real node cannot start: cannot create cgroup {hierarchy / self.cgroup}: "
                                       f"{exc.strerror} (the node needs root and writable cgroup v1 controllers)") from None
        cpuset = base / "cpuset" / self.cgroup
        if cpuset.is_dir():  # a v1 cpuset cgroup accepts no process until it has CPUs and memory nodes
            for key in ("cpuset.cpus", "cpuset.mems"):
                (cpuset / key).write_text((base / "cpuset" / key).read_text())

    def _spawn(self, name: str, argv: list[str]) -> Process:
        process = spawn(name, [*self.net.nsenter(), *argv], logs=self.workdir / "logs", cwd=self.workdir)
        self.processes.append(process)
        hoststate.record_pid(state_dir(), process.proc.pid)
        return process

    def _start_containerd(self, timeout: float) -> None:
        cri = 'plugins."io.containerd.grpc.v1.cri"'
        config = self.workdir / "containerd" / "config.toml"
        config.write_text(f"""version = 2
root = "{containerd_root()}"
state = "{state_dir() / 'containerd'}"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
                    "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]
[grpc]
  address = "{self.socket}"
[ttrpc]
  address = "{self.socket}.ttrpc"
[{cri}]
  sandbox_image = "{PAUSE_IMAGE}"
  restrict_oom_score_adj = true
  disable_apparmor = true
  enable_selinux = false
[{cri}.containerd]
  snapshotter = "overlayfs"
  default_runtime_name = "runc"
[{cri}.containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"
[{cri}.containerd.runtimes.runc.options]
  SystemdCgroup = false
[{cri}.cni]
  bin_dir = "/usr/lib/cni"
  conf_dir = "{self.workdir / 'cni' / 'net.d'}"
""")
        (self.workdir / "cni" / "net.d" / "10-mindzoo.conflist").write_text(json.dumps({
            "cniVersion": "0.4.0", "name": "mindzoo-node", "plugins": [
                {"type": "bridge", "bridge": "cni0", "isGateway": True, "ipMasq": True, "hairpinMode": True,
                 "ipam": {"type": "host-local", "ranges": [[{"subnet": POD_CIDR}]], "routes": [{"dst": "0.0.0.0/0"}],
                          "dataDir": str(self.workdir / "cni" / "ipam")}},
                {"type": "portmap", "capabilities": {"portMappings": True}}]}, indent=1))
        process = self._spawn("containerd", [self.tools.containerd, "--config", str(config)])
        # Its socket serves before the CRI service has recovered its state, and a kubelet that asks then exits
        # ("server is not initialized yet"; seen with a large image store): the CRI service is up once it
        # starts its streaming server, the last step before it takes requests.
        wait("containerd (its CRI service)", lambda: self.socket.exists() and "Start streaming server" in
             process.log.read_text(errors="replace"), timeout, process)

    def _start_kubelet(self, kubeconfig: Path) -> None:
        pki = kubeconfig.parent / "pki"
        resolv = self.workdir / "kubelet" / "resolv.conf"
        resolv.write_text(f"nameserver {NODE_IP}\n")  # pods' upstream: nothing off this machine
        config = self.workdir / "kubelet" / "config.json"
        config.write_text(json.dumps({
            "apiVersion": "kubelet.config.k8s.io/v1beta1", "kind": "KubeletConfiguration",
            "address": NODE_IP, "port": KUBELET_PORT, "readOnlyPort": 0,
            "healthzBindAddress": "127.0.0.1", "healthzPort": 10248,
            "authentication": {"anonymous": {"enabled": False}, "webhook": {"enabled": True},
                               "x509": {"clientCAFile": str(pki / "ca.crt")}},
            "authorization": {"mode": "Webhook"},
            "tlsCertFile": str(pki / "kubelet.crt"), "tlsPrivateKeyFile": str(pki / "kubelet.key"),
            "containerRuntimeEndpoint": f"unix://{self.socket}",
            # cgroup v1 ("hybrid") host, no systemd as init:
            "failCgroupV1": False, "cgroupDriver": "cgroupfs", "cgroupsPerQOS": False,
            "cgroupRoot": f"/{self.cgroup}", "enforceNodeAllocatable": [],
            "clusterDNS": [NODE_IP], "clusterDomain": "cluster.local", "resolvConf": str(resolv),
            "failSwapOn": False, "serializeImagePulls": False, "rotateCertificates": False,
            # The test images are imported, never pulled: no garbage collection, no disk-pressure evictions
            # on a busy CI disk.
            "imageGCHighThresholdPercent": 100, "imageGCLowThresholdPercent": 99,
            "evictionHard": {"memory.available": "100Mi", "nodefs.available": "1%", "imagefs.available": "1%",
                             "nodefs.inodesFree": "1%"},
            "nodeStatusUpdateFrequency": "4s", "syncFrequency": "10s", "runtimeRequestTimeout": "15m",
            "volumePluginDir": str(self.workdir / "kubelet" / "volume-plugins"),
        }, indent=1))
        self._spawn("kubelet", [self.tools.hyperkube, "kubelet", f"--config={config}", f"--kubeconfig={kubeconfig}",
                                f"--root-dir={state_dir() / 'kubelet'}", f"--hostname-override={NODE_NAME}",
                                f"--node-ip={NODE_IP}", f"--node-labels={NODE_LABEL}=true", "--v=1"])

    def _start_kube_proxy(self, kubeconfig: Path) -> None:
        config = self.workdir / "kube-proxy.json"
        config.write_text(json.dumps({
            "apiVersion": "kubeproxy.config.k8s.io/v1alpha1", "kind": "KubeProxyConfiguration",
            "clientConnection": {"kubeconfig": str(kubeconfig)}, "hostnameOverride": NODE_NAME,
            "mode": "iptables", "clusterCIDR": POD_CIDR, "bindAddress": NODE_IP,
            "healthzBindAddress": f"{NODE_IP}:10256", "metricsBindAddress": "127.0.0.1:10249",
            # 0: leave the machine-wide conntrack table size alone.
            "conntrack": {"maxPerCore": 0, "min": 0},
        }))
        self._spawn("kube-proxy", [self.tools.hyperkube, "kube-proxy", f"--config={config}", "--v=1"])

    def _start_coredns(self, kubeconfig: Path, timeout: float) -> None:
        corefile = self.workdir / "Corefile"
        corefile.write_text(f""".:53 {{
    bind {NODE_IP}
    errors
    ready {NODE_IP}:8181
    kubernetes cluster.local in-addr.arpa ip6.arpa {{
        kubeconfig {kubeconfig} harness
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
        ttl 5
    }}
    cache 5
}}
""")
        process = self._spawn("coredns", [self.tools.coredns, "-conf", str(corefile)])
        wait("CoreDNS (synced with the API server)",
             lambda: urllib.request.urlopen(f"http://{NODE_IP}:8181/ready", timeout=2).status == 200,
             timeout, process)

    # ---- stop

    def stop(self, host: hoststate.HostState) -> list[str]:
        """Stop the node and undo what it did to the machine; return what could not be undone."""
        for process in reversed(self.processes):
            if process.name != "containerd":
                process.stop()
        self._remove_containers()
        for process in self.processes:
            process.stop()
        self.processes.clear()
        problems = [f"process {pid} would not die" for pid in hoststate.kill(self.node_processes())]
        problems += self._unmount(host)
        problems += self.net.delete() if self.net is not None else []
        problems += hoststate.remove_cgroups(self.cgroup)
        shutil.rmtree(state_dir(), ignore_errors=True)
        problems += host.restore_sysctls()
        if self._lock is not None:
            self._lock.close()  # releases the flock
            self._lock = None
        return problems

    def node_processes(self) -> set[int]:
        """containerd, its shims and their containers, the kubelet, kube-proxy, CoreDNS: every process
        whose command line names the node's folders, and their descendants."""
        return hoststate.processes_of(footprint(self.workdir)["markers"])

    def _remove_containers(self) -> None:
        """Kill and remove every container through containerd (their cgroups and snapshots go with them),
        so its kept store holds images only."""
        if not self.socket.exists() or not any(p.name == "containerd" and p.alive() for p in self.processes):
            return
        ctr = [str(self.tools.ctr), "--address", str(self.socket), "--namespace", "k8s.io"]
        listing = subprocess.run([*ctr, "containers", "ls", "-q"], capture_output=True, text=True, timeout=60)
        for container in listing.stdout.split():
            subprocess.run([*ctr, "tasks", "rm", "-f", container], capture_output=True, timeout=60)
            subprocess.run([*ctr, "containers", "rm", container], capture_output=True, timeout=60)

    def _unmount(self, host: hoststate.HostState) -> list[str]:
        """Unmount what the node mounted (pod volumes, root filesystems, pods' network namespaces)."""
        problems = []
        pod_netns = [Path("/run/netns") / n for n in hoststate.netns_names() - host.netns if n.startswith("cni-")]
        for point in [*hoststate.mounts_under(footprint(self.workdir)["folders"]), *map(str, pod_netns)]:
            proc = run(["umount", "--lazy", point], f"unmounting {point}", check=False)
            if proc.returncode != 0 and point in hoststate.mounts_under([Path(point)]):
                problems.append(f"mount {point}: {proc.stderr.decode(errors='replace').strip()}")
        for path in pod_netns:
            path.unlink(missing_ok=True)
        return problems

    # ---- state

    def dead(self) -> list[Process]:
        return [p for p in self.processes if not p.alive()]

    def kubelet_healthy(self, pki: Path) -> bool:
        """The kubelet's own API answers (through its TLS, verified by the harness CA)."""
        context = ssl.create_default_context(cafile=str(pki / "ca.crt"))
        context.load_cert_chain(pki / "admin.crt", pki / "admin.key")
        url = f"https://{NODE_IP}:{KUBELET_PORT}/healthz"
        return urllib.request.urlopen(url, context=context, timeout=3).status == 200

    @property
    def api_host(self) -> str:
        return HOST_IP
