"""The real node's network: a network namespace of its own, joined to the host by a
veth pair, so the node has a real (non-loopback) address and every iptables chain,
bridge and route that containerd's CNI plugins and kube-proxy make lives inside it
and goes away with it.

::

    host (root netns)                         node netns ``mzk-<pid>``
    kube-apiserver on HOST_IP:port  <-veth->  eth0 NODE_IP: kubelet, kube-proxy, CoreDNS
    routes: POD_CIDR, SERVICE_CIDR              cni0 (bridge) POD_CIDR.1 - pods
            via NODE_IP

The node gets no default route: a pod can reach other pods, Services, the node and
the API server, and nothing off this machine. The host routes the pod and Service
ranges to the node, so tests reach pods and ClusterIPs as any node would.
"""

from __future__ import annotations

import ipaddress
import json
import os
from dataclasses import dataclass
from pathlib import Path

from kubepki import SERVICE_CIDR
from procs import HarnessError, Tools, run

LINK_CIDR = "10.213.0.0/30"
HOST_IP = "10.213.0.1"
NODE_IP = "10.213.0.2"
POD_CIDR = "10.244.0.0/24"


@dataclass
class NodeNetwork:
    """The node's network namespace and its link to the host. :meth:`create` it; :meth:`delete` it."""

    tools: Tools
    name: str
    host_link: str
    created: bool = False

    @classmethod
    def create(cls, tools: Tools) -> "NodeNetwork":
        net = cls(tools, f"mzk-{os.getpid()}", f"mzkh{os.getpid()}")
        net._check_ranges()
        try:
            net._create()
        except BaseException:
            net.delete()
            raise
        return net

    @property
    def path(self) -> Path:
        return Path("/run/netns") / self.name

    def nsenter(self) -> list[str]:
        """Prefix that runs a command in the node's network namespace (and the host's mount namespace,
        which containerd and the kubelet must share: the kubelet mounts pod volumes there)."""
        return [str(self.tools.nsenter), f"--net={self.path}", "--"]

    def _ip(self, *args: str, what: str, netns: bool = False) -> None:
        run([self.tools.ip, *(["-n", self.name] if netns else []), *args], what)

    def _check_ranges(self) -> None:
        """Refuse to start when the host already routes one of the node's ranges (a VPN, another cluster):
        the node's routes would hijack that traffic."""
        routes = json.loads(run([self.tools.ip, "-j", "route", "show"], "reading the host's routes").stdout or b"[]")
        ours = {name: ipaddress.ip_network(cidr) for name, cidr in
                (("the node link", LINK_CIDR), ("the pod range", POD_CIDR), ("the Service range", SERVICE_CIDR))}
        for route in routes:
            if route.get("dst", "default") == "default":
                continue
            theirs = ipaddress.ip_network(route["dst"], strict=False)
            for name, net in ours.items():
                if theirs.overlaps(net):
                    raise HarnessError(f"the real node cannot start: {name} {net} overlaps the host's route to "
                                       f"{theirs} (dev {route.get('dev')}); is another test node still running?")

    def _create(self) -> None:
        self._ip("netns", "add", self.name, what=f"creating network namespace {self.name} (needs root)")
        self.created = True
        self._ip("link", "add", self.host_link, "type", "veth", "peer", "name", "eth0", "netns", self.name,
                 what="creating the node's veth pair")
        self._ip("addr", "add", f"{HOST_IP}/30", "dev", self.host_link, what="addressing the host's end")
        self._ip("link", "set", self.host_link, "up", what="bringing the host's end up")
        self._ip("addr", "add", f"{NODE_IP}/30", "dev", "eth0", what="addressing the node's end", netns=True)
        for link in ("lo", "eth0"):
            self._ip("link", "set", link, "up", what=f"bringing the node's {link} up", netns=True)
        for cidr in (POD_CIDR, SERVICE_CIDR):
            self._ip("route", "add", cidr, "via", NODE_IP, what=f"routing {cidr} to the node")
        # Per network namespace: forwarding between eth0 and the pods' bridge, and bridged pod traffic
        # through iptables (kube-proxy's Service rules must see pod-to-pod traffic on one bridge).
        for key, value in (("net/ipv4/ip_forward", "1"), ("net/bridge/bridge-nf-call-iptables", "1")):
            run([*self.nsenter(), "sh", "-c", f"echo {value} > /proc/sys/{key}"], f"setting {key} in the node")

    def delete(self) -> list[str]:
        """Remove the namespace (its interfaces, bridge, routes and iptables chains go with it)."""
        problems = []
        if self.created:
            proc = run([self.tools.ip, "netns", "delete", self.name], "deleting the node's netns", check=False)
            if proc.returncode != 0 and self.path.exists():
                problems.append(f"network namespace {self.name}: {proc.stderr.decode(errors='replace').strip()}")
            self.created = False
        # The host's end of the veth and its routes die with its peer; make sure.
        run([self.tools.ip, "link", "delete", self.host_link], "deleting the veth", check=False)
        return problems
