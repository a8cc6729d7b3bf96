"""The two ways to deploy agree: each function's `[package.metadata.lambda.deploy]` (what
`cargo lambda deploy` sets) matches what infra/ sets with its default variables, and
`cargo lambda deploy` itself is run against the AWS emulator (moto), both creating a function and
deploying code onto the function infra/ created, and the result is read back."""

import io
import json
import os
import shutil
import socket
import subprocess
import time
import tomllib
import urllib.request
import zipfile
from pathlib import Path

import boto3
import pytest
import tfparse

ROOT = Path(__file__).resolve().parents[2]
FUNCTIONS = sorted(p.parent.name for p in (ROOT / "functions").glob("*/Cargo.toml"))
REGION = "eu-west-1"


@pytest.fixture(scope="module")
def parsed():
    parsed = tfparse.load_from_path(str(ROOT / "infra"))
    assert parsed.get("module") and parsed.get("aws_lambda_function"), "tfparse found no modules or functions"
    return parsed


@pytest.fixture(scope="module")
def tf(parsed):
    """infra/'s function modules by function name, with the default variables resolved."""
    return {m["__tfmeta"]["label"].replace("_", "-"): m for m in parsed["module"]}


def metadata(function):
    with open(ROOT / "functions" / function / "Cargo.toml", "rb") as f:
        return tomllib.load(f)["package"]["metadata"]["lambda"]["deploy"]


@pytest.mark.parametrize("function", FUNCTIONS)
def test_cargo_lambda_metadata_matches_infra(parsed, tf, function):
    meta, module = metadata(function), tf[function]
    (resource,) = parsed["aws_lambda_function"][:1]  # the one in modules/function
    (default_tags,) = {json.dumps(p["default_tags"]["tags"], sort_keys=True) for p in parsed["provider"]}
    assert meta["memory"] == module["memory_mb"]
    assert meta["timeout"] == module["timeout_seconds"]
    assert meta["tracing"].lower() == resource["tracing_config"]["mode"].lower()
    assert meta["env"] == module["environment"]
    assert meta["tags"] == json.loads(default_tags)
    # Not set, so cargo-lambda's default holds: the runtime infra/ uses.
    assert "runtime" not in meta and resource["runtime"] == "provided.al2023"


# ---- cargo lambda deploy against moto ----------------------------------------------------------


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def moto():
    port = free_port()
    server = subprocess.Popen(
        [ROOT / ".venv/moto/bin/python", ROOT / "shared/testkit/moto_server.py", "127.0.0.1", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(f"{url}/moto-api/", timeout=1)
            break
        except OSError:
            if time.monotonic() > deadline or server.poll() is not None:
                server.kill()
                pytest.fail("moto did not start")
            time.sleep(0.1)
    env = {
        "AWS_ENDPOINT_URL": url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
    }
    yield env
    server.kill()


@pytest.fixture(scope="module")
def cargo_lambda():
    bin_dir = subprocess.run(
        ["bash", ROOT / "scripts/ensure-cargo-lambda.sh"], check=True, capture_output=True, text=True
    ).stdout.strip()
    return Path(bin_dir) / "cargo-lambda"


def client(moto, service):
    return boto3.client(service, endpoint_url=moto["AWS_ENDPOINT_URL"], region_name=REGION,
                        aws_access_key_id="testing", aws_secret_access_key="testing")


def role(moto, name):
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                     "Principal": {"Service": "lambda.amazonaws.com"}}]}
    return client(moto, "iam").create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]


def built_binary(function, tmp_path):
    """The function's binary in cargo-lambda's layout (`<dir>/<function>/bootstrap`). The test
    deploys the debug build scripts/test.sh made; scripts/build-zips.sh makes the arm64 ones."""
    binary = ROOT / "target" / "debug" / function
    if not binary.exists():
        pytest.fail(f"{binary} is missing: scripts/test.sh builds it (cargo build --workspace --bins)")
    (tmp_path / function).mkdir()
    shutil.copy(binary, tmp_path / function / "bootstrap")
    machine = int.from_bytes(binary.read_bytes()[18:20], "little")  # ELF e_machine
    return {0x3E: "x86_64", 0xB7: "arm64"}[machine]


def deploy(cargo_lambda, moto, lambda_dir, *args):
    out = subprocess.run(
        [cargo_lambda, "lambda", "deploy", "--region", REGION, "--endpoint-url", moto["AWS_ENDPOINT_URL"],
         "--lambda-dir", lambda_dir, *args],
        cwd=ROOT, env={**os.environ, **moto}, capture_output=True, text=True, timeout=300,
    )
    assert out.returncode == 0, out.stderr + out.stdout


@pytest.mark.parametrize("function", FUNCTIONS)
def test_cargo_lambda_deploy_creates_the_function_its_metadata_describes(cargo_lambda, moto, tmp_path, function):
    arch = built_binary(function, tmp_path)
    role_arn = role(moto, f"{function}-created")
    deploy(cargo_lambda, moto, tmp_path, "--iam-role", role_arn, function)

    lam = client(moto, "lambda")
    conf = lam.get_function_configuration(FunctionName=function)
    meta = metadata(function)
    assert conf["Runtime"] == "provided.al2023"
    assert conf["Handler"] == "bootstrap"
    assert conf["Architectures"] == [arch]
    assert conf["Role"] == role_arn
    assert conf["MemorySize"] == meta["memory"]
    assert conf["Timeout"] == meta["timeout"]
    assert conf["Environment"]["Variables"] == meta["env"]
    assert conf["TracingConfig"]["Mode"] == "Active"
    assert lam.list_tags(Resource=conf["FunctionArn"])["Tags"] == meta["tags"]


@pytest.mark.parametrize("function", FUNCTIONS)
def test_code_only_deploy_onto_the_function_infra_created_changes_only_the_code(
    cargo_lambda, moto, tf, tmp_path, function
):
    built_binary(function, tmp_path)
    module = tf[function]
    name = f"autonomic-{function}"  # infra/: "${name_prefix}-${name}", default prefix
    role_arn = role(moto, name)
    placeholder = io.BytesIO()
    with zipfile.ZipFile(placeholder, "w") as z:
        z.writestr("bootstrap", "the zip infra/ uploaded first")
    lam = client(moto, "lambda")
    # As infra/modules/function creates it.
    lam.create_function(
        FunctionName=name, Runtime="provided.al2023", Handler="bootstrap", Role=role_arn,
        Architectures=["arm64"], Code={"ZipFile": placeholder.getvalue()},
        MemorySize=module["memory_mb"], Timeout=module["timeout_seconds"],
        Environment={"Variables": module["environment"]}, TracingConfig={"Mode": "Active"},
    )
    before = lam.get_function_configuration(FunctionName=name)

    # The command infra/'s `functions` output gives as deploy_code.
    deploy(cargo_lambda, moto, tmp_path, "--binary-name", function, "--iam-role", role_arn, name)

    after = lam.get_function_configuration(FunctionName=name)
    for key in ["Runtime", "Handler", "Role", "Architectures", "MemorySize", "Timeout", "Environment", "TracingConfig"]:
        assert after[key] == before[key], key
    assert after["CodeSha256"] != before["CodeSha256"]
    assert after["CodeSize"] > before["CodeSize"]


def test_infra_output_gives_the_code_only_deploy_command():
    text = (ROOT / "infra" / "outputs.tf").read_text()
    assert "cargo lambda deploy --region ${var.region} --binary-name ${name} --iam-role ${m.role_arn} ${m.function_name}" in text


def test_the_one_command_deploy_says_what_it_needs_before_building(tmp_path):
    """No terraform can be installed here, so scripts/deploy.sh's apply is not run; without
    terraform or tofu it must stop at once, before minutes of building."""
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    if any(Path(d, tool).exists() for d in env["PATH"].split(":") for tool in ["terraform", "tofu"]):
        pytest.skip("terraform is installed here")
    out = subprocess.run(["bash", ROOT / "scripts/deploy.sh"], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 1
    assert "needs terraform or tofu" in out.stderr
    assert "cargo" not in out.stdout + out.stderr.replace("needs terraform", ""), "it started building first"
