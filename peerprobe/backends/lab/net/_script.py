"""What a build writes into each namespace: ip commands, sysctls and iptables-restore tables. Pure data."""

from __future__ import annotations

from dataclasses import dataclass, field

BUILTIN_CHAINS = {
    "raw": ("PREROUTING", "OUTPUT"),
    "mangle": ("PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"),
    "nat": ("PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"),
    "filter": ("INPUT", "FORWARD", "OUTPUT"),
}


@dataclass
class Table:
    """One iptables table in iptables-save syntax: user chains, rules, built-in chain policies."""

    name: str
    chains: list[str] = field(default_factory=list)
    rules: list[str] = field(default_factory=list)  # "-A CHAIN ..." lines
    policies: dict[str, str] = field(default_factory=dict)

    def chain(self, name: str) -> str:
        if name not in self.chains:
            self.chains.append(name)
        return name

    def add(self, rule: str) -> None:
        self.rules.append(f"-A {rule}")

    def render(self) -> str:
        builtin = [f":{c} {self.policies.get(c, 'ACCEPT')} [0:0]" for c in BUILTIN_CHAINS[self.name]]
        user = [f":{c} - [0:0]" for c in self.chains]
        return "\n".join([f"*{self.name}", *builtin, *user, *self.rules, "COMMIT"]) + "\n"


@dataclass
class NsScript:
    ip: list[str] = field(default_factory=list)
    sysctls: dict[str, str] = field(default_factory=dict)
    tables: dict[str, Table] = field(default_factory=dict)

    def table(self, name: str) -> Table:
        return self.tables.setdefault(name, Table(name))

    def rules(self) -> str | None:
        return "".join(t.render() for t in self.tables.values()) or None

    def forwarding(self, devices: list[str]) -> None:
        """A namespace that routes for others. New namespaces inherit the host's IPv4 `all`/`default` conf
        (net.core.devconf_inherit_init_net=0), and systemd sets rp_filter=2: set what routing relies on."""
        self.sysctls["net/ipv4/ip_forward"] = "1"
        # `default` too: a device created later (the peering link) copies it.
        for dev in ["all", "default", *devices]:
            self.sysctls[f"net/ipv4/conf/{dev}/rp_filter"] = "0"
            self.sysctls[f"net/ipv4/conf/{dev}/arp_ignore"] = "0"  # the router answers ARP for .1 held on lo


@dataclass
class Script:
    """A whole build: veth pairs created from the host's side (ends born in their namespaces), then
    each namespace's own configuration."""

    veths: list[str] = field(default_factory=list)
    namespaces: dict[str, NsScript] = field(default_factory=dict)

    def ns(self, name: str) -> NsScript:
        return self.namespaces.setdefault(name, NsScript())

    def veth(self, name: str, ns: str, peer: str, peer_ns: str, *, address: str | None = None) -> None:
        # `ip link add ... netns A type veth peer name ... netns B` creates each end directly inside its
        # namespace (rtnl_newlink with IFLA_NET_NS_FD): nothing ever appears in the host's namespace.
        mac = f" address {address}" if address else ""
        self.veths.append(f"link add {name} netns {ns}{mac} type veth peer name {peer} netns {peer_ns}")
