"""Interop: boto3 (the AWS SDK for Python, unchanged but for its endpoint and key)
through `airlock serve --gateway` to a local S3 that checks signatures: moto in
server mode with its IAM checks on (`INITIAL_NO_AUTH_ACTION_COUNT`: after that many
requests, moto recomputes every request's SigV4 signature with the caller's secret
key and answers 403 SignatureDoesNotMatch when it differs).

Control round first: boto3 straight to moto with the real keys works, and with a
wrong secret is refused (so the server does check signatures). Then boto3 points at
the gateway with the agent token as its access key id (the gateway reads the token
from the SigV4 `Authorization`, removes it, and airlock signs with the real keys
from the vault): create a bucket, PUT and GET an empty and a non-empty object (an
empty S3 PUT answers 200 with `Content-Length: 0`: issue 14 item 8), list them. The
real secret never reaches boto3, the agent token never reaches moto, every request
is audited and the chain verifies.

Usage: python gateway_boto3.py PATH/TO/airlock
"""

import json
import os
import socket
import subprocess
import sys
import tempfile
import time

for name in list(os.environ):
    # Nothing from the environment may steer boto3: only the arguments below do.
    if name.startswith("AWS_") or name.lower() in ("http_proxy", "https_proxy", "all_proxy"):
        del os.environ[name]
os.environ["AWS_CONFIG_FILE"] = os.devnull
os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
os.environ["AWS_EC2_METADATA_DISABLED"] = "true"

import boto3  # noqa: E402
import botocore.config  # noqa: E402
import botocore.exceptions  # noqa: E402
from common import airlock, arm_watchdog, check, start_gateway, summary  # noqa: E402

REGION = "us-east-1"
BUCKET = "airlock-interop"
NO_AUTH_ACTIONS = 3  # CreateUser, CreateAccessKey, PutUserPolicy; signatures checked after


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_moto():
    port = free_port()
    env = dict(os.environ, INITIAL_NO_AUTH_ACTION_COUNT=str(NO_AUTH_ACTIONS))
    python = os.path.join(os.path.dirname(sys.executable), "python")
    proc = subprocess.Popen(
        [python, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, f"http://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("moto server did not start")


def client(service, endpoint, key_id, secret):
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=key_id,
        aws_secret_access_key=secret,
        config=botocore.config.Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
    )


def error_code(call):
    try:
        call()
    except botocore.exceptions.ClientError as e:
        return e.response.get("Error", {}).get("Code"), e.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return None, None


def main():
    arm_watchdog("boto3, moto or the gateway")
    moto, moto_url = start_moto()
    try:
        run(moto_url)
    finally:
        moto.terminate()
        moto.wait()
    summary()


def run(moto_url):
    # The unauthenticated window: an IAM user whose keys may do anything in S3.
    iam = client("iam", moto_url, "bootstrap", "bootstrap")
    iam.create_user(UserName="owner")
    key = iam.create_access_key(UserName="owner")["AccessKey"]
    iam.put_user_policy(
        UserName="owner",
        PolicyName="s3",
        PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}),
    )
    key_id, secret = key["AccessKeyId"], key["SecretAccessKey"]

    # Control: moto now checks signatures.
    direct = client("s3", moto_url, key_id, secret)
    check(isinstance(direct.list_buckets()["Buckets"], list), "control: boto3 with the real keys, straight to moto, is served")
    code, status = error_code(lambda: client("s3", moto_url, key_id, secret[:-1] + ("A" if secret[-1] != "A" else "B")).list_buckets())
    check(code == "SignatureDoesNotMatch" and status == 403, f"control: a wrong secret is refused by moto's signature check ({code} {status})")

    home = tempfile.mkdtemp(prefix="airlock-boto3-interop-")
    add_service(home, moto_url, key_id, secret)
    token = json.loads(airlock(home, "token", "issue", "--agent", "boto3", "--cap", "s3", "--json").stdout)["token"]
    proc, addr = start_gateway(home)
    try:
        check(addr is not None, "gateway: the server prints its address")
        through_gateway(addr, token, secret)
    finally:
        proc.terminate()
        proc.wait()

    logs = [json.loads(line) for line in airlock(home, "logs", "--json").stdout.splitlines()]
    requests = [r for r in logs if r["kind"] == "request" and r.get("capability") == "s3"]
    outcomes = {r.get("of"): r for r in logs if r["kind"] == "outcome"}

    def status_of(r):
        return r.get("status") if r.get("status") is not None else outcomes.get(r.get("seq"), {}).get("status")

    seen = sorted((r["method"], r["path"], status_of(r)) for r in requests if r.get("decision") == "allow")
    want = sorted([
        ("PUT", f"/{BUCKET}", 200),
        ("PUT", f"/{BUCKET}/empty.txt", 200),
        ("PUT", f"/{BUCKET}/hello.txt", 200),
        ("GET", f"/{BUCKET}/empty.txt", 200),
        ("GET", f"/{BUCKET}/hello.txt", 200),
        ("GET", f"/{BUCKET}", 200),
    ])
    check(seen == want, f"audit: one allowed record per S3 call, with moto's status {seen}")
    text = json.dumps(logs)
    check(secret not in text and token not in text, "audit: neither the secret key nor the agent token is in the log")
    check("intact" in airlock(home, "audit", "verify").stdout, "audit verify: intact")


def add_service(home, moto_url, key_id, secret):
    """The S3 service and an open capability for it, written as the owner would."""
    airlock(home, "init")
    airlock(home, "secret", "set", "s3_key_id", "--from-env", "V", env={"V": key_id})
    airlock(home, "secret", "set", "s3_secret", "--from-env", "V", env={"V": secret})
    with open(os.path.join(home, "airlock.toml"), "a") as f:
        f.write(
            f"""
[services.s3]
url = "{moto_url}"
auth = {{ type = "aws-sigv4", region = "{REGION}", aws_service = "s3", access_key_id = "s3_key_id", secret_access_key = "s3_secret" }}

[capabilities.s3]
service = "s3"
allow = ["PUT /{BUCKET}", "PUT /{BUCKET}/**", "GET /{BUCKET}", "GET /{BUCKET}/**"]
"""
        )


def through_gateway(addr, token, secret):
    s3 = client("s3", f"http://{addr}/s3", token, "not-a-secret-airlock-signs")
    s3.create_bucket(Bucket=BUCKET)
    check(True, "gateway: create_bucket through airlock is accepted by moto's signature check")
    r = s3.put_object(Bucket=BUCKET, Key="empty.txt", Body=b"")
    check(r["ResponseMetadata"]["HTTPStatusCode"] == 200 and r.get("ETag"), "gateway: PUT of an empty object answers 200 with its ETag (a Content-Length: 0 answer)")
    body = b"hello from boto3 through airlock\n" * 100
    r = s3.put_object(Bucket=BUCKET, Key="hello.txt", Body=body)
    check(r["ResponseMetadata"]["HTTPStatusCode"] == 200 and r.get("ETag"), "gateway: PUT of a non-empty object")
    got = s3.get_object(Bucket=BUCKET, Key="empty.txt")
    check(got["Body"].read() == b"", "gateway: GET of the empty object returns an empty body")
    got = s3.get_object(Bucket=BUCKET, Key="hello.txt")
    check(got["Body"].read() == body, "gateway: GET of the non-empty object returns its bytes")
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET).get("Contents", []))
    check(keys == ["empty.txt", "hello.txt"], f"gateway: list_objects_v2 sees both objects {keys}")
    code, status = error_code(lambda: client("s3", f"http://{addr}/s3", "airlock_000000000000_" + "A" * 43, "x").list_objects_v2(Bucket=BUCKET))
    check(status == 401, f"gateway: an unknown token is 401 ({code} {status})")
    code, status = error_code(lambda: s3.delete_object(Bucket=BUCKET, Key="hello.txt"))
    check(status == 403, f"gateway: a DELETE the capability does not allow is 403 ({code} {status})")


if __name__ == "__main__":
    main()
