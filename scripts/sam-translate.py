#!/usr/bin/env python3
"""Translate a SAM template to plain CloudFormation JSON, offline.

Usage: sam-translate.py TEMPLATE [ARTIFACT_BUCKET] > packaged.json

Uses the samtranslator and cfn-lint Python packages (cfn-lint's decoder reads
the !Ref/!Sub/!GetAtt short forms). No AWS call is made: managed policy names
resolve from the static map below, and local CodeUri values become
s3://ARTIFACT_BUCKET/<LogicalId>.zip as `sam package` would upload them.
Exit status: 0 on success, 1 when the template does not parse or translate.
"""
import json
import os
import sys

from cfnlint.decode import decode
from samtranslator.public.exceptions import InvalidDocumentException
from samtranslator.translator.transform import transform

MANAGED_POLICIES = {
    "AWSLambdaBasicExecutionRole": "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
    "AWSLambdaDynamoDBExecutionRole": "arn:aws:iam::aws:policy/service-role/AWSLambdaDynamoDBExecutionRole",
    "AWSXrayWriteOnlyAccess": "arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess",
    "AWSXRayDaemonWriteAccess": "arn:aws:iam::aws:policy/AWSXRayDaemonWriteAccess",
}


class StaticPolicyLoader:
    def load(self):
        return MANAGED_POLICIES


def main(argv):
    if len(argv) < 2:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    template, problems = decode(argv[1])
    if problems:
        for p in problems:
            print(p, file=sys.stderr)
        return 1
    bucket = argv[2] if len(argv) > 2 else "artifacts"
    for name, res in (template.get("Resources") or {}).items():
        if res.get("Type") != "AWS::Serverless::Function":
            continue
        props = res.setdefault("Properties", {})
        uri = props.get("CodeUri")
        if isinstance(uri, str) and not uri.startswith("s3://"):
            props["CodeUri"] = "s3://%s/%s.zip" % (bucket, name)
    # The translator resolves Refs to parameters with their defaults in some
    # properties (a function's Role given as an Fn::If, for one), which
    # would bake a default into the plain template that takes every
    # parameter at deploy time: it sees the parameters without defaults,
    # and the output gets them back as they were.
    params = template.get("Parameters") or {}
    bare = json.loads(json.dumps(template))
    for p in (bare.get("Parameters") or {}).values():
        p.pop("Default", None)
    try:
        out = transform(bare,
                        {"AWS::Region": os.environ["AWS_DEFAULT_REGION"]},
                        StaticPolicyLoader())
    except InvalidDocumentException as e:
        for cause in e.causes:
            print("SAM transform failed:", cause, file=sys.stderr)
        return 1
    if params:
        out["Parameters"] = json.loads(json.dumps(params))
    json.dump(out, sys.stdout, indent=1)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
