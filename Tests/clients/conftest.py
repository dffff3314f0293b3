"""Starts the sandbox (the real binary) for the official provider clients, and a TLS terminator in front of
it (Salesforce's client only speaks HTTPS) whose self-signed certificate the clients trust through
REQUESTS_CA_BUNDLE."""
import os
import socket
import ssl
import subprocess
import threading
import time
import urllib.request

import pytest


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def terminate_tls(cert, key, backend_port):
    """Accepts TLS on a free port and relays each connection's bytes to the sandbox's plain port, adding
    X-Forwarded-Proto to each request head as a TLS-terminating proxy does; answers the port."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(cert), str(key))
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)

    def relay(source, target, mark_requests):
        try:
            while data := source.recv(65536):
                if mark_requests:
                    data = data.replace(b"\r\nHost:", b"\r\nX-Forwarded-Proto: https\r\nHost:", 1)
                target.sendall(data)
        except OSError:
            pass
        finally:
            for side in (source, target):
                try:
                    side.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def serve():
        while True:
            client, _ = listener.accept()
            try:
                secure = context.wrap_socket(client, server_side=True)
            except (ssl.SSLError, OSError):
                client.close()
                continue
            backend = socket.create_connection(("127.0.0.1", backend_port))
            threading.Thread(target=relay, args=(secure, backend, True), daemon=True).start()
            threading.Thread(target=relay, args=(backend, secure, False), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    return listener.getsockname()[1]


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sandbox")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True)
    port = free_port()
    environment = dict(os.environ, SANDBOX_PORT=str(port), LOG_LEVEL="warning",
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
    tls_port = terminate_tls(cert, key, port)
    os.environ["REQUESTS_CA_BUNDLE"] = str(cert)
    yield {"url": url, "tls_url": f"https://127.0.0.1:{tls_port}"}
    process.terminate()
    process.wait(timeout=10)
