"""infra/ against the AWS provider's own schema and its own declarations, as `terraform validate`
would check it (tfcheck.py), and fixtures that show each check can fail."""

import json
import os
import textwrap
from pathlib import Path

import hcl2
import pytest

import tfcheck

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = Path(os.environ.get("AUTONOMIC_PROVIDER_SCHEMA", ROOT / ".venv" / "aws-provider-schema" / "schema.json"))


@pytest.fixture(scope="module")
def schema():
    assert SCHEMA.exists(), f"{SCHEMA} is missing: scripts/ensure-infra-tools.sh builds it"
    return json.loads(SCHEMA.read_text())


def test_the_schema_knows_the_provider(schema):
    assert len(schema["resource"]) > 1000 and len(schema["data"]) > 400
    fn = schema["interfaces"][schema["resource"]["aws_lambda_function"]]
    assert fn["function_name"] == {"required": True, "type": "string"}
    assert fn["memory_size"]["type"] == "number"
    assert "block" in fn["tracing_config"]


def test_infra_matches_the_provider_schema_and_its_declarations(schema):
    # Make sure the check saw what it checks: every AWS block of root and module.
    blocks = 0
    for tf in ROOT.glob("infra/**/*.tf"):
        with open(tf) as f:
            doc = hcl2.load(f)
        blocks += sum(len(named) for kind in ("resource", "data") for r in doc.get(kind, []) for named in r.values())
    assert blocks >= 30  # 30 AWS blocks on 2026-11-28; more as functions are added
    assert tfcheck.check_module(ROOT / "infra", schema) == []


GOOD_FUNCTION = """
resource "aws_lambda_function" "f" {
  function_name = "f"
  role          = "arn:aws:iam::123456789012:role/r"
  memory_size   = 128
  tracing_config {
    mode = "Active"
  }
}
"""


def problems(tmp_path, schema, main, module=None):
    (tmp_path / "main.tf").write_text(textwrap.dedent(main))
    if module:
        (tmp_path / "mod").mkdir()
        (tmp_path / "mod" / "main.tf").write_text(textwrap.dedent(module))
    return tfcheck.check_module(tmp_path, schema)


def test_a_good_fixture_has_no_problems(tmp_path, schema):
    assert problems(tmp_path, schema, GOOD_FUNCTION) == []


@pytest.mark.parametrize(
    "change, expected",
    [
        (("function_name", "functon_name"), "unknown argument or block 'functon_name'"),
        (("function_name", "function_name"), None),
        (('  memory_size   = 128\n', '  memory_size   = 128\n  colour = "blue"\n'), "unknown argument or block 'colour'"),
        (('  role          = "arn:aws:iam::123456789012:role/r"\n', ""), "missing required argument 'role'"),
        (("memory_size   = 128", 'memory_size   = "lots"'), "memory_size: needs a number"),
        (("memory_size   = 128", "memory_size   = true"), "memory_size: needs a number"),
        (("tracing_config {", "tracing_confg {"), "unknown argument or block 'tracing_confg'"),
        (('mode = "Active"', 'mood = "Active"'), "missing required argument 'mode'"),
        (('resource "aws_lambda_function"', 'resource "aws_lambda_functon"'), "unknown resource type 'aws_lambda_functon'"),
        (("tracing_config {", "tracing_config = {"), "'tracing_config' is a block, written as an argument"),
    ],
)
def test_each_schema_mistake_is_found(tmp_path, schema, change, expected):
    found = problems(tmp_path, schema, GOOD_FUNCTION.replace(*change))
    if expected is None:
        assert found == []
    else:
        assert any(expected in p for p in found), found


def test_literal_types_convert_as_terraform_converts(tmp_path, schema):
    main = """
    resource "aws_sqs_queue" "q" {
      name                       = "q"
      visibility_timeout_seconds = "30"
      fifo_queue                 = "yes"
      tags                       = ["a"]
    }
    """
    found = problems(tmp_path, schema, main)
    assert any("fifo_queue: needs a bool" in p for p in found), found
    assert any("tags: needs a map" in p for p in found), found
    assert not any("visibility_timeout_seconds" in p for p in found), found


def test_meta_arguments_and_dynamic_blocks_are_understood(tmp_path, schema):
    main = """
    variable "modes" {
      type    = list(string)
      default = ["Active"]
    }
    resource "aws_lambda_function" "f" {
      count         = 1
      function_name = "f"
      role          = "r"
      depends_on    = [aws_sqs_queue.q]
      lifecycle {
        ignore_changes = [filename]
      }
      dynamic "tracing_config" {
        for_each = var.modes
        content {
          mode = tracing_config.value
        }
      }
    }
    resource "aws_sqs_queue" "q" {
      name = "q"
    }
    """
    assert problems(tmp_path, schema, main) == []
    bad = main.replace('dynamic "tracing_config"', 'dynamic "tracing_confg"')
    assert any("dynamic 'tracing_confg'" in p for p in problems(tmp_path, schema, bad))


def test_every_kind_of_reference_must_resolve(tmp_path, schema):
    main = """
    variable "name" {
      type = string
    }
    locals {
      full = "x-${var.name}"
    }
    module "m" {
      source = "./mod"
      input  = local.full
    }
    resource "aws_sqs_queue" "q" {
      name                      = "${var.nme}-${local.ful}"
      kms_master_key_id         = module.m.key
      policy                    = module.n.out
      redrive_policy            = aws_sqs_queue.missing.arn
      delay_seconds             = data.aws_region.here.name
      message_retention_seconds = module.m.out
    }
    """
    module = """
    variable "input" {
      type = string
    }
    output "out" {
      value = var.input
    }
    """
    found = problems(tmp_path, schema, main, module)
    for want in [
        "var.nme is not declared",
        "local.ful is not declared",
        "module.m.key: ./mod has no such output",
        "module.n is not declared",
        "aws_sqs_queue.missing is not declared",
        "data.aws_region.here is not declared",
    ]:
        assert any(want in p for p in found), (want, found)
    assert not any("module.m.out" in p for p in found), found


def test_a_module_call_passes_exactly_the_variables_the_module_declares(tmp_path, schema):
    main = """
    module "m" {
      source = "./mod"
      extra  = 1
    }
    """
    module = """
    variable "needed" {
      type = string
    }
    variable "optional" {
      type    = string
      default = "x"
    }
    """
    found = problems(tmp_path, schema, main, module)
    assert any("missing required variable 'needed'" in p for p in found), found
    assert any("declares no variable 'extra'" in p for p in found), found
    assert not any("optional" in p for p in found), found
