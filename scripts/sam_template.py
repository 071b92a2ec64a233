"""Read template.yaml the way SAM does: load it, expand it offline, and answer questions about it.

Used by scripts/lint_template.py and by the deploy and contract tests, so that they all read
the template itself, never a copy of its values.
"""

import os
import re
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path

from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

TEMPLATE = Path(__file__).resolve().parent.parent / "template.yaml"
# Image functions need an ImageUri to translate; `sam build` fills in the real one.
PLACEHOLDER_IMAGE_URI = "123456789012.dkr.ecr.us-east-1.amazonaws.com/bgremove:placeholder"
ANY_BUCKET = "*"


def load(path: Path = TEMPLATE) -> dict:
    """The template as a dict, short-form tags (!Ref, !Sub...) turned into their long form."""
    return yaml_parse(path.read_text())


class _NoManagedPolicyNames:
    """The translator looks managed policy names up in IAM; this template names none, so
    there is nothing to look up and nothing goes online."""

    def load(self) -> dict[str, str]:
        return {}


def expand(template: dict) -> dict:
    """The plain CloudFormation that SAM makes of the template, as `sam deploy` would."""
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")  # the translator builds ARNs for a region
    for resource in template.get("Resources", {}).values():
        properties = resource.get("Properties", {})
        if resource["Type"] == "AWS::Serverless::Function" and properties.get("PackageType") == "Image":
            properties.setdefault("ImageUri", PLACEHOLDER_IMAGE_URI)
    return transform(template, {}, _NoManagedPolicyNames())


def parameter_defaults(template: dict) -> dict[str, str]:
    return {name: str(spec.get("Default", "")) for name, spec in template.get("Parameters", {}).items()}


def referenced_id(value) -> str | None:
    """The logical id behind {"Ref": X}, {"Fn::GetAtt": [X, ...]} or {"Fn::GetAtt": "X.Attr"}."""
    if isinstance(value, dict) and "Ref" in value:
        return value["Ref"]
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        target = value["Fn::GetAtt"]
        return target[0] if isinstance(target, list) else target.split(".")[0]
    return None


def condition_holds(template: dict, condition, parameters: dict[str, str]) -> bool:
    """A condition (by name, or written out) under the given parameter values; the template's
    conditions compare parameters (lists joined) with literals."""
    spec = template["Conditions"][condition] if isinstance(condition, str) else condition
    if "Fn::Not" in spec:
        (inner,) = spec["Fn::Not"]
        return not condition_holds(template, inner, parameters)
    left, right = (resolve(side, template, parameters) for side in spec["Fn::Equals"])
    return left == right


def choose(value, template: dict, parameters: dict[str, str]):
    """The branch an Fn::If takes under the given parameter values (anything else as it is)."""
    while isinstance(value, dict) and "Fn::If" in value:
        condition, when_true, when_false = value["Fn::If"]
        value = when_true if condition_holds(template, condition, parameters) else when_false
    return value


def resolve(value, template: dict, names: dict[str, str]) -> str:
    """A plain string for a template value: resources (or parameters) by the names given, other
    parameters by their defaults, conditions under those defaults."""
    parameters = parameter_defaults(template)
    value = choose(value, template, parameters)
    if not isinstance(value, dict):
        return str(value)
    if value.get("Ref") in names:
        return names[value["Ref"]]
    if value.get("Ref") in parameters:
        return parameters[value["Ref"]]
    if "Fn::Join" in value:
        separator, items = value["Fn::Join"]
        if isinstance(items, dict):  # a CommaDelimitedList parameter
            items = resolve(items, template, names).split(",")
        return separator.join(resolve(item, template, names) for item in items)
    raise ValueError(f"cannot resolve {value!r} offline")


@dataclass(frozen=True)
class Function:
    """A function as written: values may still be intrinsics (see ``resolve``)."""

    name: str
    handler: str
    environment: dict
    timeout: object
    memory: object


def functions(template: dict) -> list[Function]:
    """Each AWS::Serverless::Function with its image CMD, environment, timeout and memory (Globals merged)."""
    global_properties = template.get("Globals", {}).get("Function", {})
    global_variables = global_properties.get("Environment", {}).get("Variables", {})
    found = []
    for name, resource in template["Resources"].items():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        properties = {**global_properties, **resource["Properties"]}
        (handler,) = properties["ImageConfig"]["Command"]
        variables = {**global_variables, **resource["Properties"].get("Environment", {}).get("Variables", {})}
        timeout, memory = properties.get("Timeout", 3), properties.get("MemorySize", 128)
        found.append(Function(name=name, handler=handler, environment=variables, timeout=timeout, memory=memory))
    return found


def image_instructions(template: dict, path: Path = TEMPLATE) -> list[tuple[str, str]]:
    """(KEYWORD, arguments) of the Dockerfile the functions' Metadata names, continuations joined."""
    (metadata,) = {
        (resource["Metadata"]["DockerContext"], resource["Metadata"]["Dockerfile"])
        for resource in template["Resources"].values()
        if resource["Type"] == "AWS::Serverless::Function"
    }
    context, dockerfile = metadata
    text = re.sub(r"\\\n\s*", " ", (path.parent / context / dockerfile).read_text())
    return [tuple(line.split(None, 1)) for line in text.splitlines() if line.strip() and not line.startswith("#")]


# ---------------------------------------------------------------- recursion check


@dataclass(frozen=True)
class Location:
    """A bucket (logical id, or ANY_BUCKET) and a key prefix ("" for the whole bucket)."""

    bucket: str
    prefix: str

    def overlaps(self, other: "Location") -> bool:
        same_bucket = ANY_BUCKET in (self.bucket, other.bucket) or self.bucket == other.bucket
        return same_bucket and (self.prefix.startswith(other.prefix) or other.prefix.startswith(self.prefix))


def _resolve_sub(value, parameters: dict[str, str]) -> str | None:
    """A plain string for "arn"-like values, parameters substituted; None when not that simple."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and isinstance(value.get("Fn::Sub"), str):
        text = value["Fn::Sub"]
        for name, default in parameters.items():
            text = text.replace("${" + name + "}", default)
        return text
    if isinstance(value, dict) and "Ref" in value and value["Ref"] in parameters:
        return parameters[value["Ref"]]
    return None


def _object_location(resource, parameters: dict[str, str]) -> Location | None:
    """Which objects an IAM resource covers: ${Bucket.Arn}/prefix* or a wildcard; None for a
    bucket's own ARN, which covers no object."""
    if referenced_id(resource):
        return None
    text = _resolve_sub(resource, parameters)
    if text in ("*", "arn:aws:s3:::*", "arn:${AWS::Partition}:s3:::*"):
        return Location(ANY_BUCKET, "")
    if text and text.startswith("${") and ".Arn}/" in text:
        bucket, _, key = text[2:].partition(".Arn}/")
        return Location(bucket, key.split("*")[0])
    raise ValueError(f"cannot tell which S3 location the IAM resource {resource!r} covers")


def _writes(role: dict, parameters: dict[str, str]) -> list[Location]:
    """Where a role may put objects."""
    locations = []
    for arn in role["Properties"].get("ManagedPolicyArns", []):
        if "S3" in str(arn):  # an AWS managed S3 policy reaches every bucket
            locations.append(Location(ANY_BUCKET, ""))
    for policy in role["Properties"].get("Policies", []):
        statements = policy["PolicyDocument"]["Statement"]
        for statement in statements if isinstance(statements, list) else [statements]:
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            if statement["Effect"] != "Allow" or not any(fnmatchcase("s3:putobject", a.lower()) for a in actions):
                continue
            resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
            covered = (_object_location(resource, parameters) for resource in resources)
            locations.extend(location for location in covered if location is not None)
    return locations


def _triggers(resources: dict, parameters: dict[str, str]) -> list[tuple[Location, str]]:
    """(watched location, function logical id) for every S3 notification that reaches a function."""
    queue_consumers: dict[str, list[str]] = {}
    for resource in resources.values():
        if resource["Type"] == "AWS::Lambda::EventSourceMapping":
            queue = referenced_id(resource["Properties"]["EventSourceArn"])
            queue_consumers.setdefault(queue, []).append(referenced_id(resource["Properties"]["FunctionName"]))
    found = []
    for bucket, resource in resources.items():
        if resource["Type"] != "AWS::S3::Bucket":
            continue
        notifications = resource.get("Properties", {}).get("NotificationConfiguration", {})
        for kind, target_key in (("LambdaConfigurations", "Function"), ("QueueConfigurations", "Queue")):
            for configuration in notifications.get(kind, []):
                rules = configuration.get("Filter", {}).get("S3Key", {}).get("Rules", [])
                prefix = next((_resolve_sub(r["Value"], parameters) for r in rules if r["Name"].lower() == "prefix"), "")
                target = referenced_id(configuration[target_key])
                consumers = [target] if kind == "LambdaConfigurations" else queue_consumers.get(target, [])
                found.extend((Location(bucket, prefix or ""), function) for function in consumers)
    return found


def retrigger_problems(template: dict, expanded: dict) -> list[str]:
    """Functions that can write where their own S3 trigger watches: one upload, endless invocations."""
    parameters = parameter_defaults(template)
    resources = expanded["Resources"]
    problems = []
    for watched, function in _triggers(resources, parameters):
        role = resources[referenced_id(resources[function]["Properties"]["Role"])]
        for written in _writes(role, parameters):
            if written.overlaps(watched):
                problems.append(
                    f"{function} is triggered by new objects in {watched.bucket}/{watched.prefix}* "
                    f"and may write to {written.bucket}/{written.prefix}*: its own results would trigger it again"
                )
    return problems
