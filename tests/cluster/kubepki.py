"""Keys and certificates of the cluster test harness, generated per run (python
``cryptography``): a CA, the serving certificates of the API server, of kwok's
kubelet server (logs) and of the real node's kubelet, one client certificate per
component, the service-account signing key, and kubeconfigs."""

from __future__ import annotations

import datetime as dt
import ipaddress
from pathlib import Path

SERVICE_CIDR = "10.96.0.0/16"


def write_pki(pki: Path, *, api_ips: tuple[str, ...] = ("127.0.0.1",),
              node: tuple[str, str] | None = None) -> None:
    """CA, API server (serving on ``api_ips``) and kwok (kubelet) serving certs, client certs per
    component, SA signing key; with ``node`` (name, IP), the real node's kubelet serving and client
    certificates and those of kube-proxy and CoreDNS."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID

    pki.mkdir(parents=True, exist_ok=True)
    ca, ca_key = _new_ca("mindzoo-test-ca")
    (pki / "ca.crt").write_bytes(ca.public_bytes(serialization.Encoding.PEM))

    def issue(stem: str, subject: x509.Name, usage, sans: list | None = None) -> None:
        cert, key = _issue(ca, ca_key, subject, usage, sans)
        (pki / f"{stem}.crt").write_bytes(cert)
        (pki / f"{stem}.key").write_bytes(key)

    name = _name
    service_ip = next(ipaddress.ip_network(SERVICE_CIDR).hosts())
    issue("apiserver", name("kube-apiserver"), ExtendedKeyUsageOID.SERVER_AUTH, [
        x509.DNSName("localhost"), x509.DNSName("kubernetes"), x509.DNSName("kubernetes.default"),
        x509.DNSName("kubernetes.default.svc"), x509.DNSName("kubernetes.default.svc.cluster.local"),
        *(x509.IPAddress(ipaddress.ip_address(ip)) for ip in api_ips), x509.IPAddress(service_ip)])
    # kwok plays the kubelet of every fake node at 127.0.0.1 (their InternalIP): the API server
    # verifies this certificate (--kubelet-certificate-authority) when it proxies pod logs.
    issue("kwok-serving", name("kwok-kubelet"), ExtendedKeyUsageOID.SERVER_AUTH, [
        x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
    clients = {"admin": ("mindzoo-admin", "system:masters"),
               "controller-manager": ("system:kube-controller-manager", None),
               "scheduler": ("system:kube-scheduler", None),
               "kwok": ("kwok-controller", "system:masters"),
               # The API server's identity towards kubelets (logs, exec, port-forward).
               "apiserver-kubelet-client": ("kube-apiserver-kubelet-client", "system:masters")}
    if node:
        node_name, node_ip = node
        issue("kubelet", name(node_name), ExtendedKeyUsageOID.SERVER_AUTH, [
            x509.DNSName(node_name), x509.IPAddress(ipaddress.ip_address(node_ip))])
        clients.update({
            "kubelet-client": (f"system:node:{node_name}", "system:nodes"),  # the Node authorizer's subject
            "kube-proxy": ("system:kube-proxy", None),  # bound to system:node-proxier by bootstrap RBAC
            "coredns": ("mindzoo-coredns", "system:masters"),  # test infrastructure: reads Services/EndpointSlices
        })
    for stem, (cn, org) in clients.items():
        issue(stem, name(cn, org), ExtendedKeyUsageOID.CLIENT_AUTH)
    sa_key = ec.generate_private_key(ec.SECP256R1())
    (pki / "sa.key").write_bytes(_key_pem(sa_key))
    (pki / "sa.pub").write_bytes(sa_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))


def _name(cn: str, org: str | None = None):
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    if org:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
    return x509.Name(attrs)


def _key_pem(key) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _validity() -> tuple[dt.datetime, dt.datetime]:
    now = dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=5)
    return now, now + dt.timedelta(days=7)


def _new_ca(cn: str):
    """A self-signed CA certificate and its key."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    start, end = _validity()
    ca = (x509.CertificateBuilder().subject_name(_name(cn)).issuer_name(_name(cn))
          .public_key(key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(start).not_valid_after(end)
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
          .sign(key, hashes.SHA256()))
    return ca, key


def _issue(ca, ca_key, subject, usage, sans: list | None = None) -> tuple[bytes, bytes]:
    """A certificate for ``subject`` (extended key ``usage``, ``sans``) signed by the CA: (cert PEM, key PEM)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    start, end = _validity()
    builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(ca.subject)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(start).not_valid_after(end)
               .add_extension(x509.ExtendedKeyUsage([usage]), critical=False))
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return builder.sign(ca_key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM), _key_pem(key)


def write_serving_cert(folder: Path, *, ip: str = "127.0.0.1", cn: str = "mindzoo-webhooks") -> bytes:
    """A CA of its own and a serving certificate for ``ip`` signed by it, as controller-runtime's webhook
    server reads them (``tls.crt``, ``tls.key`` in ``folder``). Returns the CA certificate (PEM): the
    caBundle of the webhook configurations."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.x509.oid import ExtendedKeyUsageOID

    folder.mkdir(parents=True, exist_ok=True)
    ca, ca_key = _new_ca(f"{cn}-ca")
    cert, key = _issue(ca, ca_key, _name(cn), ExtendedKeyUsageOID.SERVER_AUTH,
                       [x509.IPAddress(ipaddress.ip_address(ip))])
    (folder / "tls.crt").write_bytes(cert)
    (folder / "tls.key").write_bytes(key)
    ca_pem = ca.public_bytes(serialization.Encoding.PEM)
    (folder / "ca.crt").write_bytes(ca_pem)
    return ca_pem


def write_kubeconfig(path: Path, server: str, pki: Path, user: str) -> Path:
    path.write_text(f"""apiVersion: v1
kind: Config
clusters:
- name: harness
  cluster:
    server: {server}
    certificate-authority: {pki / 'ca.crt'}
users:
- name: {user}
  user:
    client-certificate: {pki / f'{user}.crt'}
    client-key: {pki / f'{user}.key'}
contexts:
- name: harness
  context: {{cluster: harness, user: {user}, namespace: default}}
current-context: harness
""")
    return path
