"""Kafka security for the local platform: a SASL_SSL listener, SCRAM users, TLS made with the JDK's
keytool, KRaft's StandardAuthorizer, and the ACLs of the fleet's principals.

`creditwindow dev up --secure` (devtools/platform.py) starts the broker this way:

- one client listener, SASL_SSL with SCRAM-SHA-512, on 127.0.0.1:`CW_KAFKA_PORT`; its certificate
  is signed by a CA made for this broker (`ca.pem`, the clients' `CW_KAFKA_SSL_CAFILE`);
- the controller listener on loopback, SASL_PLAINTEXT with PLAIN, for the broker's own `admin`;
- `authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer`,
  `super.users=User:admin`, and nothing allowed without an ACL;
- one SCRAM user per principal, created when the storage is formatted (`--add-scram`): `admin`
  (the broker, the platform) and every principal of shared/contracts/principals.py (`scoring`,
  `policy`, `notification`, `upstream`, `operator`, `scaler`), each with a random password kept in
  `credentials.json` (mode 0600, never printed).

The ACLs (`fleet_acls`) are that table's grants, the same ones the Strimzi `KafkaUser`s of
deploy/k8s carry (devtools/kafka_users.py): a service reads its input topics in its own consumer
groups and writes its output topics and the dead-letter topic; upstream apps write request topics
only; only the operator writes `credit.policy` and reads `credit.deadletter` (it holds raw
applications). `client_env` gives the settings a process of one principal runs with.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path

from pydantic import SecretStr

from shared.contracts import Topics
from shared.contracts.principals import PRINCIPALS as TABLE
from shared.contracts.principals import grants
from shared.settings import Settings

__all__ = [
    "ADMIN",
    "PRINCIPALS",
    "Acl",
    "SecureKafka",
    "create_acls",
    "fleet_acls",
]

ADMIN = "admin"
PRINCIPALS = tuple(principal.name for principal in TABLE)
MECHANISM = "SCRAM-SHA-512"


class ResourceType(IntEnum):  # Kafka's org.apache.kafka.common.resource.ResourceType codes
    TOPIC = 2
    GROUP = 3
    CLUSTER = 4


class PatternType(IntEnum):
    LITERAL = 3
    PREFIXED = 4


class Operation(IntEnum):  # org.apache.kafka.common.acl.AclOperation codes
    ALL = 2
    READ = 3
    WRITE = 4
    CREATE = 5
    DELETE = 6
    ALTER = 7
    DESCRIBE = 8
    CLUSTER_ACTION = 9
    DESCRIBE_CONFIGS = 10
    ALTER_CONFIGS = 11
    IDEMPOTENT_WRITE = 12

    @classmethod
    def named(cls, name: str) -> Operation:
        """The operation of Kafka's (and Strimzi's) name: `DescribeConfigs` -> DESCRIBE_CONFIGS."""
        return cls[re.sub(r"(?<!^)(?=[A-Z])", "_", name).upper()]


ALLOW = 3


@dataclass(frozen=True, slots=True)
class Acl:
    """Allow `principal` to do `operation` on a resource (a topic, a group, the cluster)."""

    principal: str
    operation: Operation
    resource: ResourceType
    name: str
    pattern: PatternType = PatternType.LITERAL

    def __str__(self) -> str:
        kind = "prefixed " if self.pattern == PatternType.PREFIXED else ""
        return f"User:{self.principal} {self.operation.name} {self.resource.name.lower()} {kind}{self.name}"


_RESOURCES = {"topic": ResourceType.TOPIC, "group": ResourceType.GROUP, "cluster": ResourceType.CLUSTER}


def fleet_acls(topics: Topics) -> list[Acl]:
    """Every ACL of the fleet in a namespace: the grants of shared/contracts/principals.py. Pure."""
    return [
        Acl(
            grant.principal,
            Operation.named(grant.operation),
            _RESOURCES[grant.resource],
            grant.name,
            PatternType.PREFIXED if grant.prefixed else PatternType.LITERAL,
        )
        for grant in grants(topics)
    ]


async def create_acls(admin: Settings, acls: Sequence[Acl]) -> None:
    """Create the ACLs (idempotent: an ACL that exists is kept) with the admin's credentials.

    aiokafka 0.14's admin client has no create_acls; its protocol has CreateAcls (v1 is Kafka 4's
    baseline), sent here through its public client.
    """
    from aiokafka.client import AIOKafkaClient
    from aiokafka.protocol.admin import CreateAclsRequest

    from shared.messaging import aiokafka_kwargs

    client = AIOKafkaClient(**aiokafka_kwargs(admin), request_timeout_ms=15_000)
    await client.bootstrap()
    try:
        node = client.get_random_node()
        for acl in acls:
            request = CreateAclsRequest(
                int(acl.resource), acl.name, int(acl.pattern), f"User:{acl.principal}", "*", int(acl.operation), ALLOW
            )
            response = await client.send(node, request)
            for error_code, error_message in response.creation_responses:
                if error_code:
                    raise RuntimeError(f"could not create ACL {acl}: error {error_code} {error_message or ''}".strip())
    finally:
        await client.close()


class SecureKafka:
    """The files of a secured local broker: TLS material, SCRAM credentials, listener settings."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.credentials_path = directory / "credentials.json"
        self.ca_path = directory / "ca.pem"
        self.keystore_path = directory / "broker.p12"

    @property
    def exists(self) -> bool:
        return self.credentials_path.is_file() and self.keystore_path.is_file() and self.ca_path.is_file()

    # --- credentials -------------------------------------------------------------------------------

    def credentials(self) -> dict[str, str]:
        """Principal -> password (plus `_keystore`, the keystore's password)."""
        return dict(json.loads(self.credentials_path.read_text()))

    def create(self, java: str) -> None:
        """Random passwords, a CA and the broker's certificate (keytool); idempotent."""
        if self.exists:
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        os.chmod(self.directory, 0o700)
        passwords = {name: secrets.token_hex(24) for name in (ADMIN, *PRINCIPALS, "_keystore", "_ca")}
        descriptor = os.open(self.credentials_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            json.dump(passwords, handle)
        self._make_tls(java, passwords["_ca"], passwords["_keystore"])

    def _make_tls(self, java: str, ca_pass: str, store_pass: str) -> None:
        keytool = str(Path(java).with_name("keytool"))
        if not Path(keytool).is_file():
            keytool = shutil.which("keytool") or "keytool"
        ca_store, csr, signed = self.directory / "ca.p12", self.directory / "broker.csr", self.directory / "broker.pem"
        common = ["-keyalg", "RSA", "-keysize", "2048", "-validity", "825", "-storetype", "PKCS12"]
        steps: list[list[str]] = [
            ["-genkeypair", "-alias", "ca", "-dname", "CN=creditwindow local CA", "-ext", "bc:c",
             "-keystore", str(ca_store), "-storepass", ca_pass, "-keypass", ca_pass, *common],
            ["-exportcert", "-rfc", "-alias", "ca", "-keystore", str(ca_store), "-storepass", ca_pass, "-file", str(self.ca_path)],
            ["-genkeypair", "-alias", "broker", "-dname", "CN=localhost",
             "-keystore", str(self.keystore_path), "-storepass", store_pass, "-keypass", store_pass, *common],
            ["-certreq", "-alias", "broker", "-keystore", str(self.keystore_path), "-storepass", store_pass, "-file", str(csr)],
            ["-gencert", "-rfc", "-alias", "ca", "-keystore", str(ca_store), "-storepass", ca_pass, "-infile", str(csr),
             "-outfile", str(signed), "-ext", "SAN=dns:localhost,ip:127.0.0.1", "-validity", "825"],
            ["-importcert", "-noprompt", "-alias", "ca", "-file", str(self.ca_path),
             "-keystore", str(self.keystore_path), "-storepass", store_pass],
            ["-importcert", "-noprompt", "-alias", "broker", "-file", str(signed),
             "-keystore", str(self.keystore_path), "-storepass", store_pass],
        ]  # fmt: skip
        for step in steps:
            result = subprocess.run([keytool, *step], capture_output=True, text=True, timeout=60)
            if result.returncode != 0:
                # keytool's output names files and aliases, never the store passwords given as arguments.
                raise RuntimeError(f"keytool {step[0]} failed: {(result.stdout + result.stderr)[-1500:]}")
        csr.unlink(missing_ok=True)

    # --- the broker ----------------------------------------------------------------------------------

    def scram_arguments(self) -> list[str]:
        """`kafka-storage format` arguments creating every SCRAM user."""
        arguments = []
        for name, password in sorted(self.credentials().items()):
            if not name.startswith("_"):
                arguments += ["--add-scram", f"{MECHANISM}=[name={name},password={password}]"]
        return arguments

    def server_properties(self, *, port: int, controller_port: int) -> list[str]:
        """The listener, TLS, SASL and authorizer lines of the broker's properties."""
        credentials = self.credentials()
        admin, store = credentials[ADMIN], credentials["_keystore"]
        return [
            f"listeners=SASL_SSL://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}",
            f"advertised.listeners=SASL_SSL://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}",
            "listener.security.protocol.map=CONTROLLER:SASL_PLAINTEXT,SASL_SSL:SASL_SSL",
            "inter.broker.listener.name=SASL_SSL",
            f"sasl.enabled.mechanisms={MECHANISM}",
            f"sasl.mechanism.inter.broker.protocol={MECHANISM}",
            f"listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule "
            f'required username="{ADMIN}" password="{admin}";',
            # The controller's users live in its own config: SCRAM users are metadata, which the
            # controller listener must already serve.
            "sasl.mechanism.controller.protocol=PLAIN",
            "listener.name.controller.sasl.enabled.mechanisms=PLAIN",
            f"listener.name.controller.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule "
            f'required username="{ADMIN}" password="{admin}" user_{ADMIN}="{admin}";',
            "ssl.keystore.type=PKCS12",
            f"ssl.keystore.location={self.keystore_path}",
            f"ssl.keystore.password={store}",
            f"ssl.key.password={store}",
            "ssl.truststore.type=PKCS12",
            f"ssl.truststore.location={self.keystore_path}",
            f"ssl.truststore.password={store}",
            "ssl.client.auth=none",
            "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            f"super.users=User:{ADMIN}",
            "allow.everyone.if.no.acl.found=false",
        ]

    # --- clients -------------------------------------------------------------------------------------

    def client_env(self, principal: str, *, port: int) -> dict[str, str]:
        """The environment a process of `principal` runs with against this broker."""
        return {
            "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{port}",
            "CW_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "CW_KAFKA_SASL_MECHANISM": MECHANISM,
            "CW_KAFKA_SASL_USERNAME": principal,
            "CW_KAFKA_SASL_PASSWORD": self.credentials()[principal],
            "CW_KAFKA_SSL_CAFILE": str(self.ca_path),
        }

    def client_settings(self, base: Settings, principal: str, *, port: int) -> Settings:
        """`base` with the endpoint and credentials of `principal`."""
        env = self.client_env(principal, port=port)
        return base.model_copy(
            update={
                "kafka_bootstrap_servers": env["KAFKA_BOOTSTRAP_SERVERS"],
                "kafka_security_protocol": "SASL_SSL",
                "kafka_sasl_mechanism": MECHANISM,
                "kafka_sasl_username": principal,
                "kafka_sasl_password": SecretStr(env["CW_KAFKA_SASL_PASSWORD"]),
                "kafka_ssl_cafile": self.ca_path,
            }
        )

    def missing_principals(self) -> list[str]:
        """Principals of the table with no SCRAM user here: the broker was formatted before they existed."""
        return [principal for principal in PRINCIPALS if principal not in self.credentials()]

    def write_env_files(self, *, port: int, principals: Iterable[str] = PRINCIPALS) -> list[Path]:
        """One `<principal>.env` per principal that has a user here (mode 0600), to source before
        running a process as it."""
        written = []
        for principal in (p for p in principals if p in self.credentials()):
            path = self.directory / f"{principal}.env"
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(descriptor, "w") as handle:
                handle.writelines(f"export {k}={v}\n" for k, v in self.client_env(principal, port=port).items())
            written.append(path)
        return written
