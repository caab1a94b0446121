import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from hub.store import LocalStore


@pytest.fixture
def store(tmp_path: Path) -> LocalStore:
    return LocalStore(tmp_path / "hub", cache_dir=tmp_path / "cache")


def write_composition(folder: Path) -> dict[str, Path]:
    """Spec files for a model, an embedder, a prompt, an index, a pipeline and an eval report."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model").mkdir(exist_ok=True)
    (folder / "model" / "model.safetensors").write_bytes(os.urandom(200_000))
    (folder / "model" / "config.json").write_text('{"architectures": ["LlamaForCausalLM"]}')
    (folder / "model" / "tokenizer.json").write_text('{"version": "1.0"}')
    (folder / "index.faiss").write_bytes(os.urandom(4096))
    specs = {
        "model": """kind: model
name: models/tiny-chat
spec:
  format: safetensors
  context_length: 2048
  chat_template: "{% for m in messages %}{{ m.content }}{% endfor %}"
  files: [model/model.safetensors, model/config.json, model/tokenizer.json]
""",
        "embedder": """kind: model
name: models/tiny-embedder
spec:
  context_length: 256
  files: [model/model.safetensors, model/config.json]
""",
        "prompt": """kind: prompt
name: prompts/rag-answer
tags: [v1, latest]
spec:
  template: "Context: {{ context }}\\nQuestion: {{ question }}"
  variables: [context, question]
  defaults: {context: ""}
""",
        "index": """kind: index
name: indices/docs
spec:
  backend: faiss
  embedder: models/tiny-embedder:latest
  dimension: 384
  parameters: {metric: cosine}
  files: [index.faiss]
  counts: {documents: 3, chunks: 10}
""",
        "pipeline": """kind: pipeline
name: rag/docs-qa
tags: [prod]
spec:
  model: models/tiny-chat
  prompt: prompts/rag-answer:v1
  indices: [indices/docs]
  retrieval: {mode: hybrid, top_k: 3}
  generation: {temperature: 0.2, max_tokens: 64}
""",
        "report": """kind: eval-report
name: reports/docs-qa
spec:
  target: rag/docs-qa:prod
  metrics: {recall_at_3: 0.8}
""",
    }
    paths = {}
    for key, text in specs.items():
        paths[key] = folder / f"{key}.yaml"
        paths[key].write_text(text)
    return paths


def push_composition(store: LocalStore, folder: Path) -> dict[str, str]:
    from hub.spec_file import load_spec_file

    digests = {}
    for key, path in write_composition(folder).items():
        loaded = load_spec_file(path)
        digests[key] = store.push(loaded.kind, loaded.name, loaded.spec, loaded.files, loaded.tags).digest
    return digests


@pytest.fixture
def composed(store: LocalStore, tmp_path: Path) -> dict[str, str]:
    return push_composition(store, tmp_path / "specs")


# --- a real OCI registry (Debian's docker-registry) on loopback -----------------------------------


@dataclass
class Registry:
    host: str
    username: str | None = None
    password: str | None = None
    ca_cert: Path | None = None  # set when the registry serves TLS with a test certificate


def make_loopback_certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for IP 127.0.0.1 (it is its own CA): (cert.pem, key.pem)."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "aihub test registry")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start_registry(folder: Path, auth: tuple[str, str] | None, tls: bool = False) -> Iterator[Registry]:
    binary = shutil.which("docker-registry")
    if binary is None:
        pytest.skip(
            "Debian's docker-registry is not installed (apt-get install docker-registry apache2-utils)"
        )
    folder.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    auth_yaml = ""
    if auth is not None:
        htpasswd = shutil.which("htpasswd")
        if htpasswd is None:
            pytest.skip("htpasswd is not installed (apt-get install apache2-utils)")
        line = subprocess.run([htpasswd, "-Bbn", *auth], check=True, capture_output=True, text=True).stdout
        (folder / "htpasswd").write_text(line)
        auth_yaml = f"auth: {{htpasswd: {{realm: local, path: {folder / 'htpasswd'}}}}}\n"
    tls_yaml, ca_cert = "", None
    if tls:
        ca_cert, key = make_loopback_certificate(folder / "tls")
        tls_yaml = f", tls: {{certificate: {ca_cert}, key: {key}}}"
    config = folder / "config.yml"
    config.write_text(
        "version: 0.1\nlog: {level: error}\n"
        f"storage: {{filesystem: {{rootdirectory: {folder / 'data'}}}, delete: {{enabled: true}}}}\n"
        f"http: {{addr: 127.0.0.1:{port}, secret: local-test-secret{tls_yaml}}}\n" + auth_yaml
    )
    log = open(folder / "registry.log", "wb")  # noqa: SIM115
    process = subprocess.Popen([binary, "serve", str(config)], stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.05)
    else:
        process.kill()
        raise RuntimeError(f"registry did not start: {(folder / 'registry.log').read_text()}")
    try:
        user, password = auth if auth is not None else (None, None)
        yield Registry(f"127.0.0.1:{port}", user, password, ca_cert=ca_cert)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    yield from _start_registry(tmp_path_factory.mktemp("registry"), None)


@pytest.fixture(scope="module")
def auth_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    yield from _start_registry(tmp_path_factory.mktemp("registry-auth"), ("alice", "s3cret-pass"))


@pytest.fixture(scope="module")
def tls_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """The registry over HTTPS with a self-signed certificate for 127.0.0.1 (``ca_cert``)."""
    yield from _start_registry(tmp_path_factory.mktemp("registry-tls"), None, tls=True)


@pytest.fixture
def untrusted_ca(tmp_path: Path) -> Path:
    """A certificate that signed nothing the test registries serve."""
    return make_loopback_certificate(tmp_path / "untrusted-ca")[0]


@pytest.fixture
def spec_files(tmp_path: Path) -> dict[str, Path]:
    """The composition's YAML spec files (not pushed)."""
    return write_composition(tmp_path / "specs")
