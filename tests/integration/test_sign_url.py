"""scripts/sign_url.py in-process: the URL it prints is one the route accepts, its options are
checked as the route checks them, and its defaults come from the deployed stack."""

import io
import json
import sys
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit

import boto3
import pytest
from helpers import encode, example_photo
from localaws import INPUT_BUCKET, OUTPUT_BUCKET
from PIL import Image

from handler.errors import InvalidOption
from handler.request import cutout_options
from handler.settings import Settings
from handler.storage import Storage

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
import sign_url  # noqa: E402

SECRET = "sign-url-test-secret"
KEY = "shop/red shoe+1 é.jpg"


def run(capsys, *arguments: str) -> str:
    """What sign_url.py prints for these arguments."""
    assert sign_url.main(list(arguments)) == 0
    return capsys.readouterr().out.strip()


def get(api, url: str):
    """Send a printed URL through the API as API Gateway would deliver it."""
    parts = urlsplit(url)
    # REST APIs pass the path on percent-encoded; HTTP APIs decode it.
    path = parts.path if api.version == "v1" else unquote(parts.path)
    return api.call(api.event(method="GET", path=path, query=dict(parse_qsl(parts.query, keep_blank_values=True))))


@pytest.fixture
def deployed(api_with, s3):
    """The API with a signing secret and a photo under a key with a folder, a space, a plus and an accent."""
    s3.put_object(Bucket=INPUT_BUCKET, Key=KEY, Body=encode(example_photo("astronaut", (160, 120)), "JPEG"))
    settings = Settings(source_bucket=INPUT_BUCKET, output_bucket=OUTPUT_BUCKET, url_signing_secret=SECRET)
    return api_with(settings=settings, storage=Storage())


def test_the_printed_url_is_accepted_by_the_route(deployed, capsys):
    signing = ["--base", "https://cdn.example.com/", "--secret", SECRET]
    url = run(capsys, KEY, "--crop", "1", "--max-size", "64", "--expires-in", "600", *signing)
    assert url.startswith("https://cdn.example.com/cutouts/shop/red%20shoe%2B1%20%C3%A9.jpg?crop=1&max_size=64&expires=")
    reply = get(deployed, url)
    assert reply.status == 200, reply.body[:300]
    assert max(Image.open(io.BytesIO(reply.body)).size) == 64


def test_format_auto_and_every_option_name_are_signed_as_given(deployed, capsys):
    signing = ["--base", "http://127.0.0.1:3000", "--secret", SECRET]
    url = run(capsys, KEY, "--format", "auto", "--refine", "false", "--hard", "true", "--max_size", "50", *signing)
    assert dict(parse_qsl(urlsplit(url).query))["format"] == "auto"
    reply = get(deployed, url)
    assert (reply.status, reply.content_type, reply.headers["Vary"]) == (200, "image/png", "Accept")


def test_the_secret_comes_from_the_environment(deployed, capsys, monkeypatch):
    monkeypatch.setenv("URL_SIGNING_SECRET", SECRET)
    assert get(deployed, run(capsys, KEY, "--base", "http://127.0.0.1:3000")).status == 200
    # a URL signed with another secret is refused: the signature is what the route checks
    assert get(deployed, run(capsys, KEY, "--base", "http://x", "--secret", "another")).error_code == "bad_signature"


@pytest.mark.parametrize(
    "options",
    [{"format": "jpeg"}, {"max_size": "0"}, {"crop": "maybe"}, {"mask": "true", "background": "#00ff00"}, {"background": "red"}],
)
def test_options_the_route_would_refuse_are_not_signed(options, capsys):
    with pytest.raises(InvalidOption) as refused:
        cutout_options(options, accept="")
    arguments = [item for name, value in options.items() for item in (f"--{name}", value)]
    with pytest.raises(SystemExit) as exit:
        sign_url.main([KEY, *arguments, "--base", "https://cdn.example.com", "--secret", SECRET])
    printed = capsys.readouterr()
    assert exit.value.code == 2 and printed.out == ""
    assert printed.err.rstrip().endswith(refused.value.message)


def test_a_value_no_signature_covers_is_not_signed(capsys):
    # "true\n" passes the options (read stripped), but the route refuses any URL holding a newline
    # whatever its signature: signed, it was a URL that could only ever answer 403.
    with pytest.raises(SystemExit) as exit:
        sign_url.main([KEY, "--crop", "true\n", "--base", "http://127.0.0.1:3000", "--secret", SECRET])
    printed = capsys.readouterr()
    assert exit.value.code == 2 and printed.out == ""
    assert "no signature covers a URL whose parameters hold a newline" in printed.err


def test_store_and_unknown_options_are_not_offered(capsys):
    with pytest.raises(SystemExit):
        sign_url.main([KEY, "--store", "true", "--base", "x", "--secret", SECRET])
    assert "unrecognized arguments: --store" in capsys.readouterr().err


@pytest.mark.parametrize("base", ["https://d111.cloudfront.net/cutouts/", "https://d111.cloudfront.net"])
def test_base_url_and_secret_come_from_the_deployed_stack(deployed, capsys, monkeypatch, aws, base):
    # GIVEN a stack whose outputs name the CDN (as template.yaml's CutoutBaseUrl does, ending in
    # /cutouts/, or as the bare host) and the Secrets Manager secret
    monkeypatch.delenv("URL_SIGNING_SECRET", raising=False)
    arn = boto3.client("secretsmanager").create_secret(Name="bgremove-url-signing", SecretString=SECRET)["ARN"]
    template = {
        "Resources": {"Placeholder": {"Type": "AWS::SQS::Queue"}},
        "Outputs": {"CutoutBaseUrl": {"Value": base}, "UrlSigningSecretArn": {"Value": arn}},
    }
    boto3.client("cloudformation").create_stack(StackName="shop-images", TemplateBody=json.dumps(template))
    # WHEN only the key, an option and the stack are given
    url = run(capsys, KEY, "--background", "#ffffff", "--format", "jpeg", "--stack", "shop-images")
    # THEN the URL is on the CDN and signed with the stack's secret
    assert url.startswith("https://d111.cloudfront.net/cutouts/shop/")
    reply = get(deployed, url)
    assert (reply.status, reply.content_type) == (200, "image/jpeg")


def test_the_stack_name_defaults_to_samconfigs():
    assert sign_url.default_stack() == "bgremove"


@pytest.mark.parametrize(
    ("arguments", "advice"), [(["--secret", SECRET], "pass --base URL"), (["--base", "https://x"], "pass --secret or set")]
)
def test_without_aws_the_error_says_what_to_pass(arguments, advice, capsys, monkeypatch):
    # GIVEN no AWS to ask: nothing listens at the endpoint
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("URL_SIGNING_SECRET", raising=False)
    with pytest.raises(SystemExit) as exit:
        sign_url.main([KEY, *arguments])
    error = capsys.readouterr().err
    assert exit.value.code == 2
    assert "could not read the outputs of stack 'bgremove'" in error and advice in error


def test_a_stack_without_the_output_says_so(capsys, aws):
    template = {"Resources": {"Placeholder": {"Type": "AWS::SQS::Queue"}}}
    boto3.client("cloudformation").create_stack(StackName="older", TemplateBody=json.dumps(template))
    with pytest.raises(SystemExit):
        sign_url.main([KEY, "--stack", "older", "--secret", SECRET])
    assert "stack 'older' has no CutoutBaseUrl output; pass --base URL" in capsys.readouterr().err
