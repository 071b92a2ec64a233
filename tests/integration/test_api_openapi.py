"""openapi.json is a valid OpenAPI 3 document that describes what the handler really does.

Every reply the handler tests get is also checked against it (conftest's assert_documented).
"""

import json
from dataclasses import fields
from pathlib import Path

import pytest
from openapi_spec_validator import validate

from handler import errors
from handler.options import FORMATS, Options

DOCUMENT = json.loads((Path(__file__).resolve().parent.parent.parent / "openapi.json").read_text())
REMOVE = DOCUMENT["paths"]["/remove"]["post"]
CUTOUT = DOCUMENT["paths"]["/cutouts/{key}"]["get"]
OPERATIONS = [operation for path in DOCUMENT["paths"].values() for operation in path.values()]
OPTION_NAMES = [field.name for field in fields(Options)]


def follow(reference: str) -> dict:
    """What a local reference (#/components/...) points at."""
    node = DOCUMENT
    for part in reference.removeprefix("#/").split("/"):
        node = node[part]
    return node


def test_document_is_valid_openapi():
    validate(DOCUMENT)


def test_every_option_is_a_documented_query_parameter():
    parameters = [follow(p["$ref"]) if "$ref" in p else p for p in REMOVE["parameters"]]
    query = {parameter["name"] for parameter in parameters if parameter["in"] == "query"}
    assert query == set(OPTION_NAMES)


def test_every_option_but_store_is_a_documented_cutout_parameter():
    parameters = [follow(p["$ref"]) if "$ref" in p else p for p in CUTOUT["parameters"]]
    query = {parameter["name"] for parameter in parameters if parameter["in"] == "query"}
    assert query == set(OPTION_NAMES) - {"store"} | {"expires", "signature"}
    assert DOCUMENT["paths"]["/cutouts/{key}"]["head"]["parameters"] == CUTOUT["parameters"]


def test_every_option_is_a_documented_json_field():
    assert set(follow("#/components/schemas/Options")["properties"]) == set(OPTION_NAMES)
    for request in ("ImageRequest", "S3Request"):
        assert {"$ref": "#/components/schemas/Options"} in follow(f"#/components/schemas/{request}")["allOf"]


def test_documented_formats_are_the_options_formats():
    documented = follow("#/components/schemas/Options/properties/format")["enum"]
    assert set(documented) == set(FORMATS) | {"jpg"}
    assert Options.parse({"format": "jpg", "mask": True}).format == "jpeg"


@pytest.mark.parametrize(
    "error",
    [cls for cls in vars(errors).values() if isinstance(cls, type) and issubclass(cls, errors.ServiceError)],
    ids=lambda c: c.__name__,
)
def test_every_error_type_is_documented_with_its_status_and_code(error):
    responses = [
        operation["responses"][str(error.status)] for operation in OPERATIONS if str(error.status) in operation["responses"]
    ]
    assert responses, f"{error.__name__}: status {error.status} is not documented"
    examples = [example for response in responses for example in response["content"]["application/json"]["examples"].values()]
    assert error.code in {example["value"]["error"]["code"] for example in examples}
    assert error.code in follow("#/components/schemas/Error/properties/error/properties/code")["enum"]
