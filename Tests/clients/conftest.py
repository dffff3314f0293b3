"""Starts the sandbox (the real binary) for the official provider clients, with an HTTPS listener whose
self-signed certificate the clients trust through REQUESTS_CA_BUNDLE."""
import os
import socket
import subprocess
import time
import urllib.request

import pytest


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sandbox")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True)
    port, tls_port = free_port(), free_port()
    environment = dict(os.environ, SANDBOX_PORT=str(port), SANDBOX_TLS_PORT=str(tls_port), SANDBOX_TLS_CERT=str(cert),
                       SANDBOX_TLS_KEY=str(key), LOG_LEVEL="warning",
                       SANDBOX_SALESFORCE_TOKENS="sandbox-salesforce-token,acme-salesforce-token@acme")
    log = open(folder / "sandbox.log", "w")
    process = subprocess.Popen([os.path.join(os.environ["WRITEBACK_BIN"], "writeback-sandbox")], env=environment,
                               stdout=log, stderr=log)
    url = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            urllib.request.urlopen(url + "/_sandbox/health", timeout=1)
            break
        except OSError:
            time.sleep(0.1)
    os.environ["REQUESTS_CA_BUNDLE"] = str(cert)
    yield {"url": url, "tls_url": f"https://127.0.0.1:{tls_port}"}
    process.terminate()
    process.wait(timeout=10)
