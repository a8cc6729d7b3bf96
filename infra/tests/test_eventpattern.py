"""The matcher's own tests: each operator, and the array rules moto gets wrong."""

import pytest

from eventpattern import matches

EVENT = {
    "source": "aws.cloudwatch",
    "detail-type": "CloudWatch Alarm State Change",
    "detail": {
        "alarmName": "web-cpu-high",
        "state": {"value": "ALARM"},
        "count": 7,
        "tags": ["prod", "web"],
        "configuration": {"metrics": [
            {"id": "e1", "expression": "m1/m2"},
            {"id": "m1", "metricStat": {"metric": {"namespace": "AWS/EC2", "name": "CPUUtilization"}}},
        ]},
    },
}


@pytest.mark.parametrize("pattern, expected", [
    ({"source": ["aws.cloudwatch"]}, True),
    ({"source": ["aws.ec2", "aws.cloudwatch"]}, True),
    ({"source": ["aws.ec2"]}, False),
    ({"detail": {"state": {"value": ["ALARM"]}}}, True),
    ({"detail": {"state": {"value": ["OK"]}}}, False),
    ({"detail": {"alarmName": [{"prefix": "web-"}]}}, True),
    ({"detail": {"alarmName": [{"prefix": "api-"}]}}, False),
    ({"detail": {"alarmName": [{"suffix": "-high"}]}}, True),
    ({"detail": {"alarmName": [{"anything-but": ["web-cpu-high"]}]}}, False),
    ({"detail": {"alarmName": [{"anything-but": "billing"}]}}, True),
    ({"detail": {"alarmName": [{"anything-but": {"prefix": "web-"}}]}}, False),
    ({"detail": {"alarmName": [{"exists": True}]}}, True),
    ({"detail": {"missing": [{"exists": True}]}}, False),
    ({"detail": {"missing": [{"exists": False}]}}, True),
    ({"detail": {"alarmName": [{"exists": False}]}}, False),
    ({"detail": {"count": [{"numeric": [">", 5, "<=", 7]}]}}, True),
    ({"detail": {"count": [{"numeric": [">", 7]}]}}, False),
    ({"detail": {"count": [7]}}, True),
    ({"detail": {"count": ["7"]}}, False),
    ({"detail": {"alarmName": [{"equals-ignore-case": "WEB-CPU-HIGH"}]}}, True),
    ({"detail": {"alarmName": [{"wildcard": "web-*-high"}]}}, True),
    # An array value matches if any element does.
    ({"detail": {"tags": ["web"]}}, True),
    ({"detail": {"tags": ["dev"]}}, False),
    # Through an array of objects.
    ({"detail": {"configuration": {"metrics": {"metricStat": {"metric": {"namespace": ["AWS/EC2"]}}}}}}, True),
    ({"detail": {"configuration": {"metrics": {"id": ["e1"], "expression": [{"exists": True}]}}}}, True),
    ({"detail": {"configuration": {"metrics": {"metricStat": {"metric": {"namespace": ["AWS/RDS"]}}}}}}, False),
    # $or
    ({"$or": [{"source": ["x"]}, {"detail": {"count": [7]}}]}, True),
])
def test_operators(pattern, expected):
    assert matches(pattern, EVENT) is expected


def test_bad_patterns_are_errors_not_silent_passes():
    with pytest.raises(ValueError):
        matches({"source": "aws.cloudwatch"}, EVENT)
    with pytest.raises(ValueError):
        matches({"source": [{"bogus": 1}]}, EVENT)
