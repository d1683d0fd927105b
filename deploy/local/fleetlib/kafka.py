"""Apache Kafka 4.1.1, one combined broker+controller node (KRaft) from Maven Central jars, authenticated:

- the client listener speaks SASL_PLAINTEXT with SCRAM-SHA-512 only, a second one (MOE_KAFKA_TLS_PORT, 9094) the
  same over TLS (SASL_SSL; its certificate from the machine's own CA, fleetlib.kafka_tls); the StandardAuthorizer
  refuses whatever no ACL allows (allow.everyone.if.no.acl.found=false);
- `admin` is the super user of fleetctl, the topic set-up and the tests; each service has its own principal
  (its name) whose ACLs come from its declaration (moe_core.provision.broker_acls, applied by fleetlib.kafka_setup);
- the controller listener uses PLAIN with a static `controller` user (KRaft cannot bootstrap SCRAM there);
- passwords are generated into .data/secrets.json (fleetlib.secrets): kafka-admin, kafka-controller,
  kafka-<service>. A fresh data directory gets the admin's SCRAM credential at format time
  (`kafka-storage format --add-scram`); one formatted before SASL (plaintext) is adopted on its first start:
  its first start also offers PLAIN with the static admin user (server.properties), through which the
  admin's SCRAM credential is added (fleetlib.kafka.adopt); from the next start on only SCRAM is offered.
  Its topics and offsets are kept.
"""

from __future__ import annotations

import asyncio
import base64
import os
import secrets
import subprocess

from pydantic import SecretStr

from moe_core.runtime.settings import FleetSettings

from . import config, jvm, kafka_tls
from . import secrets as passwords
from .component import Component

HOME = config.DATA / "kafka"
PROPS = HOME / "server.properties"
ADMIN_SCRAM = HOME / "admin-scram.done"  # the admin's SCRAM credential is in the cluster's metadata
LOG4J = HOME / "log4j2.properties"
CLUSTER_ID = HOME / "cluster.id"
LIB = config.LIB / "kafka"

LOG4J_TEXT = """\
status = warn
appender.console.type = Console
appender.console.name = STDOUT
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRefs = stdout
rootLogger.appenderRef.stdout.ref = STDOUT
logger.kafka.name = kafka
logger.kafka.level = INFO
logger.state.name = state.change.logger
logger.state.level = WARN
logger.request.name = kafka.request.logger
logger.request.level = WARN
logger.controller.name = org.apache.kafka.controller
logger.controller.level = INFO
logger.clients.name = org.apache.kafka.clients
logger.clients.level = WARN
"""


# The broker's GC (issue 52, measured with bench.kafka_costs on 2 cores): the serial collector does the 512 MB heap's
# young collections in the VM thread; G1's concurrent refinement and marking threads took 13 ms of CPU a second idle
# and 8 ms per full request at concurrency 1 (serial: under 1). C2 stays: C1 alone (TieredStopAtLevel=1) ended the
# compiler's warm-up CPU but made every request ~1.5x dearer in the network and request threads.
# MOE_KAFKA_JVM_FLAGS replaces them ("-XX:+UseG1GC -XX:MaxGCPauseMillis=20": the flags before).
JVM_FLAGS = "-XX:+UseSerialGC"


def jvm_flags() -> list[str]:
    """The broker's GC and JIT flags: MOE_KAFKA_JVM_FLAGS, else JVM_FLAGS."""
    return (os.environ.get("MOE_KAFKA_JVM_FLAGS") or JVM_FLAGS).split()

# The storage format's JVM runs a second or two: C1 alone and the serial collector (1.9 -> 1.2 s of CPU, and 6.6-19 ->
# 2.9-6.6 s on the loaded 2-core machine): each fresh broker's first start, the test suite's private ones too.
TOOL_FLAGS = ("-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC")

ADMIN, CONTROLLER = "admin", "controller"
SCRAM = "org.apache.kafka.common.security.scram.ScramLoginModule"
PLAIN = "org.apache.kafka.common.security.plain.PlainLoginModule"


def admin_password() -> str:
    return passwords.generate(f"kafka-{ADMIN}")


def security(admin: str, controller: str, mechanisms: str = "SCRAM-SHA-512", inter: str = "SCRAM-SHA-512", *,
             broker_plain: bool = False) -> str:
    """server.properties' authentication and authorization, the same on the one-node broker and on every node of the
    cluster (fleetlib.kafka_cluster): SCRAM-SHA-512 (`mechanisms`) on the client listener `BROKER` with `admin` the
    broker's own login (`inter`: its mechanism), PLAIN with the static `controller` user between controllers, the
    StandardAuthorizer refusing whatever no ACL allows, admin and controller the super users. broker_plain: the
    broker listener also holds PLAIN's static admin user (used only when `mechanisms` offers PLAIN: adopting)."""
    plain = (f'listener.name.broker.plain.sasl.jaas.config={PLAIN} required username="{ADMIN}" password="{admin}" '
             f'user_{ADMIN}="{admin}";\n') if broker_plain else ""
    return f"""\
sasl.enabled.mechanisms={mechanisms}
sasl.mechanism.inter.broker.protocol={inter}
listener.name.broker.sasl.enabled.mechanisms={mechanisms}
listener.name.broker.scram-sha-512.sasl.jaas.config={SCRAM} required username="{ADMIN}" password="{admin}";
{plain}sasl.mechanism.controller.protocol=PLAIN
listener.name.controller.sasl.enabled.mechanisms=PLAIN
listener.name.controller.plain.sasl.jaas.config={PLAIN} required username="{CONTROLLER}" password="{controller}" \
user_{CONTROLLER}="{controller}";
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
super.users=User:{ADMIN};User:{CONTROLLER}
allow.everyone.if.no.acl.found=false
"""


def _properties(adopting: bool) -> str:
    """adopting: the admin's SCRAM credential is not in the metadata yet (a directory formatted before SASL), so
    the broker listener also offers PLAIN with the static admin user, and the broker uses it itself."""
    broker, controller, tls = config.port("kafka"), config.port("kafka-controller"), config.port("kafka-tls")
    h = config.HOST
    admin, ctl = admin_password(), passwords.generate(f"kafka-{CONTROLLER}")
    mechanisms, inter = ("SCRAM-SHA-512,PLAIN", "PLAIN") if adopting else ("SCRAM-SHA-512", "SCRAM-SHA-512")
    return f"""\
# generated by fleetctl: edits are overwritten on each start (holds passwords: mode 0600)
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers={h}:{controller}
listeners=BROKER://{h}:{broker},TLS://{h}:{tls},CONTROLLER://{h}:{controller}
advertised.listeners=BROKER://{h}:{broker},TLS://{h}:{tls},CONTROLLER://{h}:{controller}
inter.broker.listener.name=BROKER
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:SASL_PLAINTEXT,BROKER:SASL_PLAINTEXT,TLS:SASL_SSL
listener.name.tls.sasl.enabled.mechanisms=SCRAM-SHA-512
listener.name.tls.scram-sha-512.sasl.jaas.config={SCRAM} required;
listener.name.tls.ssl.keystore.type=PEM
listener.name.tls.ssl.keystore.location={kafka_tls.KEYSTORE}
{security(admin, ctl, mechanisms, inter, broker_plain=True)}log.dirs={HOME / "data"}
num.partitions=3
auto.create.topics.enable=false
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
share.coordinator.state.topic.num.partitions=1
group.initial.rebalance.delay.ms=0
num.network.threads=2
num.io.threads=2
num.recovery.threads.per.data.dir=1
log.cleaner.dedupe.buffer.size=16777216
log.retention.hours=168
"""


def _cluster_id() -> str:
    if CLUSTER_ID.is_file():
        return CLUSTER_ID.read_text().strip()
    while True:
        cid = base64.urlsafe_b64encode(secrets.token_bytes(16)).decode().rstrip("=")
        if not cid.startswith("-"):
            break
    CLUSTER_ID.write_text(cid + "\n")
    return cid


def _secret_file(path: object, text: str) -> None:
    from pathlib import Path

    target = Path(str(path))
    target.touch(mode=0o600, exist_ok=True)
    target.chmod(0o600)
    target.write_text(text)


def _scram(password: str) -> str:
    return f"SCRAM-SHA-512=[iterations=4096,password={password}]"


def prepare() -> list[str]:
    HOME.mkdir(parents=True, exist_ok=True)
    kafka_tls.ensure()  # the TLS listener's keystore (made when missing or expiring)
    formatted = (HOME / "data" / "meta.properties").exists()
    _secret_file(PROPS, _properties(adopting=formatted and not ADMIN_SCRAM.exists()))
    LOG4J.write_text(LOG4J_TEXT)
    java, cp = jvm.java(), jvm.classpath(LIB)
    if not formatted:
        res = subprocess.run(  # noqa: S603
            [java, "-Xmx256m", *TOOL_FLAGS, f"-Dlog4j2.configurationFile={LOG4J}", "-cp", cp, "kafka.tools.StorageTool",
             "format", "--standalone", "-t", _cluster_id(), "-c", str(PROPS), "--ignore-formatted",
             "--add-scram", f"SCRAM-SHA-512=[name={ADMIN},iterations=4096,password={admin_password()}]"],
            capture_output=True, text=True, check=False)
        if res.returncode != 0:
            raise RuntimeError(f"kafka storage format failed:\n{res.stdout}{res.stderr}")
        ADMIN_SCRAM.write_text("formatted with the admin's SCRAM credential\n")
    return [java, "-Xms256m", "-Xmx512m", *jvm_flags(),
            "-Djava.awt.headless=true", f"-Dkafka.logs.dir={config.LOGS}",
            f"-Dlog4j2.configurationFile={LOG4J}", "-cp", cp, "kafka.Kafka", str(PROPS)]


async def adopt() -> None:
    """A data directory formatted before SASL: its first start also offers PLAIN with the static admin user
    (server.properties), through which the admin's SCRAM credential is added here; the next start offers
    SCRAM only."""
    from moe_core.provision.kafka_admin import KafkaAdmin

    plain = admin_settings().model_copy(update={"kafka_sasl_mechanism": "PLAIN"})
    async with KafkaAdmin(plain) as admin:
        await admin.upsert_scram({ADMIN: admin_password()})
    ADMIN_SCRAM.write_text("adopted: the admin's SCRAM credential added (PLAIN is offered until the next start)\n")


def admin_settings() -> FleetSettings:
    """The admin principal's client settings (moe_core.runtime.settings.FleetSettings)."""
    return FleetSettings(kafka_bootstrap=f"{config.HOST}:{config.port('kafka')}",
                         kafka_security_protocol="SASL_PLAINTEXT", kafka_sasl_mechanism="SCRAM-SHA-512",
                         kafka_username=ADMIN, kafka_password=SecretStr(admin_password()))


async def check() -> None:
    from aiokafka.admin import AIOKafkaAdminClient

    host, port = config.HOST, config.port("kafka")
    _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 2)
    writer.close()
    if not ADMIN_SCRAM.exists():
        await adopt()
    from moe_core.runtime.kafka_clients import client_kwargs

    admin = AIOKafkaAdminClient(**client_kwargs(admin_settings()), request_timeout_ms=5000)
    try:
        await asyncio.wait_for(admin.start(), 6)
        await asyncio.wait_for(admin.describe_cluster(), 6)
        await asyncio.wait_for(admin.list_topics(), 6)
    finally:
        await admin.close()


COMPONENT = Component(
    clients=("aiokafka.admin",),
    name="kafka", group="infra", port_key="kafka", prepare=prepare, check=check, deadline=90,
    match=lambda: str(PROPS), ready="port open, aiokafka admin `describe_cluster` + `list_topics`",
)
