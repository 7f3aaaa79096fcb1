"""The Kubernetes Pod Security Standards, written from the published standard (kubernetes.io/docs/concepts/
security/pod-security-standards, policy version v1.30+), applied to a pod spec.

``violations(pod_spec, level)`` returns one readable line per control the pod fails at ``baseline`` or
``restricted`` (restricted includes baseline). kubernetes-validate checks types, not these rules.
"""

from __future__ import annotations

from typing import Any

BASELINE_CAPABILITIES = {
    "AUDIT_WRITE",
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "MKNOD",
    "NET_BIND_SERVICE",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
}
SAFE_SYSCTLS = {
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
}
SELINUX_TYPES = {"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"}
RESTRICTED_VOLUMES = {
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
}
LEVELS = ("privileged", "baseline", "restricted")


def _containers(spec: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for key in ("initContainers", "containers", "ephemeralContainers"):
        for c in spec.get(key) or []:
            out.append((f"{key}[{c.get('name', '?')}]", c))
    return out


def _baseline(spec: dict[str, Any]) -> list[str]:
    found: list[str] = []
    psc = spec.get("securityContext") or {}
    for key in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(key):
            found.append(f"host namespaces: {key} is true")
    if (psc.get("windowsOptions") or {}).get("hostProcess"):
        found.append("hostProcess: pod windowsOptions.hostProcess is true")
    for v in spec.get("volumes") or []:
        if "hostPath" in v:
            found.append(f"hostPath volumes: volume {v.get('name')} is a hostPath")
    for sysctl in psc.get("sysctls") or []:
        if sysctl.get("name") not in SAFE_SYSCTLS:
            found.append(f"sysctls: {sysctl.get('name')} is not a safe sysctl")
    se = psc.get("seLinuxOptions") or {}
    if se.get("type", "") not in SELINUX_TYPES or se.get("user") or se.get("role"):
        found.append("SELinux: pod seLinuxOptions outside the allowed set")
    if (psc.get("seccompProfile") or {}).get("type") == "Unconfined":
        found.append("seccomp: pod seccompProfile is Unconfined")
    if (psc.get("appArmorProfile") or {}).get("type") not in (None, "RuntimeDefault", "Localhost"):
        found.append("AppArmor: pod appArmorProfile is not RuntimeDefault/Localhost")
    for where, c in _containers(spec):
        sc = c.get("securityContext") or {}
        if (sc.get("windowsOptions") or {}).get("hostProcess"):
            found.append(f"hostProcess: {where}")
        if sc.get("privileged"):
            found.append(f"privileged containers: {where} is privileged")
        added = set((sc.get("capabilities") or {}).get("add") or [])
        if added - BASELINE_CAPABILITIES:
            found.append(f"capabilities: {where} adds {sorted(added - BASELINE_CAPABILITIES)}")
        for port in c.get("ports") or []:
            if port.get("hostPort"):
                found.append(f"host ports: {where} uses hostPort {port['hostPort']}")
        se = sc.get("seLinuxOptions") or {}
        if se.get("type", "") not in SELINUX_TYPES or se.get("user") or se.get("role"):
            found.append(f"SELinux: {where} seLinuxOptions outside the allowed set")
        if sc.get("procMount", "Default") != "Default":
            found.append(f"/proc mount type: {where} procMount is {sc['procMount']}")
        if (sc.get("seccompProfile") or {}).get("type") == "Unconfined":
            found.append(f"seccomp: {where} seccompProfile is Unconfined")
        if (sc.get("appArmorProfile") or {}).get("type") not in (None, "RuntimeDefault", "Localhost"):
            found.append(f"AppArmor: {where} appArmorProfile is not RuntimeDefault/Localhost")
    return found


def _restricted(spec: dict[str, Any]) -> list[str]:
    found: list[str] = []
    psc = spec.get("securityContext") or {}
    for v in spec.get("volumes") or []:
        kinds = set(v) - {"name"}
        if kinds and not kinds <= RESTRICTED_VOLUMES:
            found.append(f"volume types: volume {v.get('name')} is {sorted(kinds)[0]}")
    pod_non_root = psc.get("runAsNonRoot") is True
    pod_seccomp = (psc.get("seccompProfile") or {}).get("type") in ("RuntimeDefault", "Localhost")
    if psc.get("runAsUser") == 0:
        found.append("running as non-root user: pod runAsUser is 0")
    for where, c in _containers(spec):
        sc = c.get("securityContext") or {}
        if sc.get("allowPrivilegeEscalation") is not False:
            found.append(f"privilege escalation: {where} does not set allowPrivilegeEscalation: false")
        if sc.get("runAsNonRoot") is False or not (pod_non_root or sc.get("runAsNonRoot") is True):
            found.append(f"running as non-root: {where} has no runAsNonRoot: true (pod or container)")
        if sc.get("runAsUser") == 0:
            found.append(f"running as non-root user: {where} runAsUser is 0")
        container_seccomp = (sc.get("seccompProfile") or {}).get("type")
        if not (
            container_seccomp in ("RuntimeDefault", "Localhost")
            or (pod_seccomp and container_seccomp is None)
        ):
            found.append(
                f"seccomp: {where} has no RuntimeDefault/Localhost seccompProfile (pod or container)"
            )
        caps = sc.get("capabilities") or {}
        if "ALL" not in (caps.get("drop") or []):
            found.append(f"capabilities: {where} does not drop ALL")
        if set(caps.get("add") or []) - {"NET_BIND_SERVICE"}:
            found.append(f"capabilities: {where} adds more than NET_BIND_SERVICE")
    return found


def violations(spec: dict[str, Any], level: str) -> list[str]:
    """Controls of ``level`` (privileged, baseline, restricted) that this pod spec fails."""
    if level not in LEVELS:
        raise ValueError(f"unknown Pod Security level {level!r}")
    if level == "privileged":
        return []
    found = _baseline(spec)
    if level == "restricted":
        found += _restricted(spec)
    return found
