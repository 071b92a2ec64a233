"""What template.yaml promises about security and delivery, read from the template itself."""

import ast
import json
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

from scripts import sam_template

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = sam_template.load()
RESOURCES = TEMPLATE["Resources"]
PARAMETERS = TEMPLATE["Parameters"]
DEFAULTS = sam_template.parameter_defaults(TEMPLATE)


def of_type(kind: str) -> dict[str, dict]:
    return {name: resource for name, resource in RESOURCES.items() if resource["Type"] == kind}


def evaluate(value, parameters: dict[str, str]):
    """Fn::If resolved under the given parameter values (conditions here are Equals/Not on parameters)."""
    return sam_template.choose(value, TEMPLATE, parameters)


def role_statements(function: str) -> list[dict]:
    role = RESOURCES[sam_template.referenced_id(RESOURCES[function]["Properties"]["Role"])]
    return [statement for policy in role["Properties"]["Policies"] for statement in policy["PolicyDocument"]["Statement"]]


def as_list(value) -> list:
    return value if isinstance(value, list) else [value]


# ---------------------------------------------------------------- API


def operations() -> dict[tuple[str, str], dict]:
    paths = RESOURCES["Api"]["Properties"]["DefinitionBody"]["paths"]
    return {(path, method): operation for path, methods in paths.items() for method, operation in methods.items()}


@pytest.mark.parametrize(
    "auth_mode, expected_security",
    [("API_KEY", [{"api_key": []}]), ("IAM", [{"sigv4": []}]), ("NONE", [])],
)
def test_every_route_requires_the_chosen_auth(auth_mode, expected_security):
    # GIVEN the AuthMode parameter WHEN the template is deployed with it THEN every POST route demands it
    routes = {key: operation for key, operation in operations().items() if key[1] != "options" and key[0] != CUTOUTS}
    assert set(routes) == {("/remove", "post"), ("/uploads", "post")}
    for route, operation in routes.items():
        assert evaluate(operation["security"], {**DEFAULTS, "AuthMode": auth_mode}) == expected_security, route


def test_auth_is_on_by_default_with_a_throttled_quota():
    assert DEFAULTS["AuthMode"] == "API_KEY"
    assert set(PARAMETERS["AuthMode"]["AllowedValues"]) == {"API_KEY", "IAM", "NONE"}
    plan = RESOURCES["UsagePlan"]
    assert plan["Condition"] == RESOURCES["ApiKey"]["Condition"] == RESOURCES["UsagePlanKey"]["Condition"] == "ApiKeyAuth"
    assert set(plan["Properties"]["Throttle"]) == {"RateLimit", "BurstLimit"}
    assert plan["Properties"]["Quota"]["Period"] == "DAY"
    assert sam_template.referenced_id(plan["Properties"]["ApiStages"][0]["ApiId"]) == "Api"
    # The stage itself is throttled too, so IAM and NONE are never unthrottled.
    (method_settings,) = RESOURCES["Api"]["Properties"]["MethodSettings"]
    assert {"ThrottlingRateLimit", "ThrottlingBurstLimit"} <= set(method_settings)
    # A parameter flip must reach the live stage: SAM cannot hash what a parameter changes.
    assert RESOURCES["Api"]["Properties"]["AlwaysDeploy"] is True


def test_only_preflights_and_cutout_urls_go_without_credentials():
    for (path, method), operation in operations().items():
        if method == "options" or path == CUTOUTS:
            assert "security" not in operation, path
        else:
            assert operation["security"], (path, method)
        integration = operation["x-amazon-apigateway-integration"]
        assert integration["type"] == "aws_proxy"
        assert "${ApiFunction.Arn}" in integration["uri"]["Fn::Sub"]


def test_api_returns_binary_bodies():
    assert RESOURCES["Api"]["Properties"]["BinaryMediaTypes"] == ["*/*"]


@pytest.mark.parametrize("response_type", ["DEFAULT_4XX", "DEFAULT_5XX"])
def test_gateway_refusals_carry_the_cors_origin_and_are_not_cached(response_type):
    # GIVEN API Gateway refusing on its own (no API key, throttled, integration timeout): the
    # function never sees the request, so the headers must come from the gateway response.
    body = sam_template.expand(sam_template.load())["Resources"]["Api"]["Properties"]["Body"]
    headers = body["x-amazon-apigateway-gateway-responses"][response_type]["responseParameters"]
    # THEN browsers of the first allowed origin (all of them by default) see the real status...
    assert headers["gatewayresponse.header.Access-Control-Allow-Origin"] == {
        "Fn::Sub": ["'${Origin}'", {"Origin": {"Fn::Select": [0, {"Ref": "CorsOrigins"}]}}]
    }
    assert DEFAULTS["CorsOrigins"] == "*"
    # ...and neither CloudFront nor a browser keeps the refusal.
    assert headers["gatewayresponse.header.Cache-Control"] == "'no-store'"


# ---------------------------------------------------------------- cut-out URLs

CUTOUTS = "/cutouts/{key+}"


def test_cutout_urls_are_greedy_get_and_head_routes_to_the_api_function():
    methods = RESOURCES["Api"]["Properties"]["DefinitionBody"]["paths"][CUTOUTS]
    assert set(methods) == {"get", "head"}
    for operation in methods.values():
        # {key+} takes the rest of the path: keys contain "/".
        assert operation["parameters"] == [{"name": "key", "in": "path", "required": True, "type": "string"}]
        assert "${ApiFunction.Arn}" in operation["x-amazon-apigateway-integration"]["uri"]["Fn::Sub"]
        # No API key, whatever AuthMode says: the function checks the signature with this secret...
        assert "security" not in operation
    variables = RESOURCES["ApiFunction"]["Properties"]["Environment"]["Variables"]
    assert variables["URL_SIGNING_SECRET_ARN"] == {"Ref": "UrlSigningSecret"}
    # A new value of the secret is read within 5 minutes: Powertools keeps a read 5 s by default.
    assert variables["POWERTOOLS_PARAMETERS_MAX_AGE"] == "300"
    # ...and the stage's throttle covers these routes like every other.
    (method_settings,) = RESOURCES["Api"]["Properties"]["MethodSettings"]
    assert (method_settings["ResourcePath"], method_settings["HttpMethod"]) == ("/*", "*")


def test_signing_secret_is_generated_at_deploy_and_never_a_parameter():
    (name,) = of_type("AWS::SecretsManager::Secret")
    properties = RESOURCES[name]["Properties"]
    assert "SecretString" not in properties, "a secret written in the template is in every copy of it"
    generated = properties["GenerateSecretString"]
    assert generated["PasswordLength"] >= 32 and "SecretStringTemplate" not in generated
    assert not [p for p in PARAMETERS if "secret" in p.lower() or "sign" in p.lower()]
    # Only the API function may read it, and nothing else of Secrets Manager.
    for function in sorted(of_type("AWS::Serverless::Function")):
        reads = [s for s in role_statements(function) if any(a.startswith("secretsmanager:") for a in as_list(s["Action"]))]
        expected = [{"Action": "secretsmanager:GetSecretValue", "Resource": {"Ref": name}}] if function == "ApiFunction" else []
        assert [{"Action": s["Action"], "Resource": s["Resource"]} for s in reads] == expected, function


@pytest.mark.parametrize(
    "source_bucket, source",
    [("", {"Ref": "InputBucket"}), ("shop-photos", {"Ref": "SourceBucketName"})],
)
def test_cutouts_read_only_the_source_bucket_and_write_only_results(source_bucket, source):
    # GIVEN SourceBucketName empty (the stack's input bucket) or an existing bucket of photos
    parameters = {**DEFAULTS, "SourceBucketName": source_bucket}
    variables = RESOURCES["ApiFunction"]["Properties"]["Environment"]["Variables"]
    assert evaluate(variables["SOURCE_BUCKET"], parameters) == source
    # THEN the API function may read and list that bucket (a missing key is then a 404, not a 403)
    # and nothing else: never write it; results (cut-outs among them) only under the result prefix.
    read_source = {
        ("s3:GetObject", "arn:${AWS::Partition}:s3:::${SourceBucketName}/*"),
        ("s3:ListBucket", "arn:${AWS::Partition}:s3:::${SourceBucketName}"),
    }
    # The input bucket's own read and list are among the API's grants already.
    assert s3_grants("ApiFunction", parameters) == API_GRANTS | (read_source if source_bucket else set())
    assert int(DEFAULTS["CutoutMaxAge"]) == 86400
    assert variables["CUTOUT_MAX_AGE"] == {"Ref": "CutoutMaxAge"}


def test_routes_are_the_ones_openapi_json_documents():
    document = json.loads((ROOT / "openapi.json").read_text())
    documented = {(path, method) for path, methods in document["paths"].items() for method in methods}
    # OpenAPI has no greedy parameters: {key+} is written {key} there.
    deployed = {(path.replace("+}", "}"), method) for path, method in operations()}
    # The CORS preflights too: a web page's POST of JSON or image bytes is preceded by one.
    assert deployed == documented


# ---------------------------------------------------------------- CDN


def cdn() -> dict:
    return RESOURCES["CutoutDistribution"]["Properties"]["DistributionConfig"]


def cutout_behaviour() -> dict:
    (behaviour,) = cdn()["CacheBehaviors"]
    return behaviour


def test_cdn_is_on_by_default_and_can_be_turned_off():
    assert DEFAULTS["EnableCdn"] == "true" and set(PARAMETERS["EnableCdn"]["AllowedValues"]) == {"true", "false"}
    cloudfront = {name for name, resource in RESOURCES.items() if resource["Type"].startswith("AWS::CloudFront::")}
    assert cloudfront == {"CutoutDistribution", "CutoutCachePolicy", "CutoutAcceptFunction"}
    assert {RESOURCES[name]["Condition"] for name in cloudfront} == {"CdnEnabled"}
    assert sam_template.condition_holds(TEMPLATE, "CdnEnabled", DEFAULTS)
    assert not sam_template.condition_holds(TEMPLATE, "CdnEnabled", {**DEFAULTS, "EnableCdn": "false"})


def test_the_api_has_one_stage_and_it_is_the_metered_one():
    # SAM's deployment makes a second stage, "Stage", unless the API names its OpenApiVersion
    expanded = sam_template.expand(sam_template.load())["Resources"]
    deployments = [resource for resource in expanded.values() if resource["Type"] == "AWS::ApiGateway::Deployment"]
    stages = [resource for resource in expanded.values() if resource["Type"] == "AWS::ApiGateway::Stage"]
    assert [deployment["Properties"].get("StageName") for deployment in deployments] == [None]
    assert [stage["Properties"]["StageName"] for stage in stages] == ["v1"]
    assert expanded["Api"]["Properties"]["Body"]["swagger"] == "2.0"


def test_cdn_talks_https_only_to_viewers_and_to_the_api_stage():
    (origin,) = cdn()["Origins"]
    assert origin["DomainName"] == {"Fn::Sub": "${Api}.execute-api.${AWS::Region}.${AWS::URLSuffix}"}
    assert origin["OriginPath"] == "/v1" and RESOURCES["Api"]["Properties"]["StageName"] == "v1"
    assert origin["CustomOriginConfig"]["OriginProtocolPolicy"] == "https-only"
    assert origin["CustomOriginConfig"]["OriginSSLProtocols"] == ["TLSv1.2"]
    for behaviour in (cutout_behaviour(), cdn()["DefaultCacheBehavior"]):
        assert behaviour["TargetOriginId"] == origin["Id"]
        assert behaviour["ViewerProtocolPolicy"] in ("https-only", "redirect-to-https")


def test_cdn_caches_cutout_reads_only_and_passes_nothing_else_but_get_and_head():
    behaviour = cutout_behaviour()
    assert behaviour["PathPattern"] == "/cutouts/*"
    assert behaviour["AllowedMethods"] == behaviour["CachedMethods"] == ["GET", "HEAD"]
    default = cdn()["DefaultCacheBehavior"]
    assert default["AllowedMethods"] == ["GET", "HEAD"], "POST /remove and /uploads stay on the API's own URL"
    assert default["CachePolicyId"] == "4135ea2d-6df8-44a3-9df3-4b5a84be39ad", "Managed-CachingDisabled"
    assert "OriginRequestPolicyId" not in default and "FunctionAssociations" not in default


def test_cdn_leaves_images_uncompressed():
    key = RESOURCES["CutoutCachePolicy"]["Properties"]["CachePolicyConfig"]["ParametersInCacheKeyAndForwardedToOrigin"]
    assert key["EnableAcceptEncodingGzip"] is False and key["EnableAcceptEncodingBrotli"] is False
    assert cutout_behaviour()["Compress"] is False and cdn()["DefaultCacheBehavior"]["Compress"] is False


@pytest.mark.parametrize(
    "cors_origins, headers",
    [
        ("*", ["Accept"]),
        ("https://shop.example", ["Accept", "Origin"]),
        ("https://a.example,https://b.example", ["Accept", "Origin"]),
    ],
)
def test_cache_key_is_the_path_the_options_the_signature_and_the_normalised_accept(cors_origins, headers):
    policy = RESOURCES["CutoutCachePolicy"]["Properties"]["CachePolicyConfig"]
    assert cutout_behaviour()["CachePolicyId"] == {"Ref": "CutoutCachePolicy"}
    key = policy["ParametersInCacheKeyAndForwardedToOrigin"]
    # Every parameter, not just the options and the signature's: the function answers any other
    # with a refusal, which must not be kept for the URL without it (see tests/integration/test_cutouts.py).
    assert key["QueryStringsConfig"] == {"QueryStringBehavior": "all"}
    assert key["CookiesConfig"] == {"CookieBehavior": "none"}
    # Accept as the viewer-request function rewrote it; Origin too when the function's CORS
    # answer depends on it (restricted origins: Vary: Origin, which CloudFront does not act on).
    assert key["HeadersConfig"]["HeaderBehavior"] == "whitelist"
    assert evaluate(key["HeadersConfig"]["Headers"], {**DEFAULTS, "CorsOrigins": cors_origins}) == headers
    # The function's Cache-Control decides how long; an answer without one is not kept.
    assert (policy["MinTTL"], policy["DefaultTTL"]) == (0, 0)
    assert policy["MaxTTL"] >= PARAMETERS["CutoutMaxAge"]["MaxValue"]


def test_origin_gets_what_the_cache_key_holds_but_not_the_viewers_host():
    # The key's query string and Accept (and Origin) reach the origin; API Gateway routes on its
    # own Host, which an origin request policy forwarding all viewer headers would replace.
    assert "OriginRequestPolicyId" not in cutout_behaviour()


# CloudFront keeps these refusals for the error-caching minimum whatever Cache-Control says: it
# honours no-store on 404, 410, 414 and 501 only. 10 s unless the distribution sets another.
ERRORS_KEPT_DESPITE_NO_STORE = (400, 403, 500, 502, 503, 504)
DEFAULT_ERROR_CACHING_SECONDS = 10


def test_the_readme_says_how_long_cloudfront_keeps_a_refused_cutout():
    minimum = {item["ErrorCode"]: item["ErrorCachingMinTTL"] for item in cdn().get("CustomErrorResponses", [])}
    seconds = {minimum.get(status, DEFAULT_ERROR_CACHING_SECONDS) for status in ERRORS_KEPT_DESPITE_NO_STORE}
    assert seconds == {DEFAULT_ERROR_CACHING_SECONDS}
    cdn_section = (ROOT / "README.md").read_text().split("### Cut-out URLs and the CDN", 1)[1].split("\n### ", 1)[0]
    assert "never kept" not in cdn_section
    assert f"{DEFAULT_ERROR_CACHING_SECONDS} seconds" in cdn_section


def accept_after_viewer_request(requests: list[dict]) -> list[str]:
    """Run the distribution's CloudFront Function with node on viewer-request events; the Accept
    header each request leaves with."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: the CloudFront Function's JavaScript cannot run here")
    function = RESOURCES["CutoutAcceptFunction"]["Properties"]
    assert function["FunctionConfig"]["Runtime"] == "cloudfront-js-2.0"
    association = {"EventType": "viewer-request", "FunctionARN": {"Fn::GetAtt": ["CutoutAcceptFunction", "FunctionARN"]}}
    assert cutout_behaviour()["FunctionAssociations"] == [association]
    events = [{"version": "1.0", "context": {"eventType": "viewer-request"}, "request": request} for request in requests]
    script = function["FunctionCode"] + f"\nconsole.log(JSON.stringify({json.dumps(events)}.map(handler)));"
    run = subprocess.run([node, "-e", script], capture_output=True, text=True, timeout=30)
    assert run.returncode == 0, run.stderr
    answered = json.loads(run.stdout)
    for request, out in zip(requests, answered, strict=True):
        assert {k: v for k, v in out.items() if k != "headers"} == {k: v for k, v in request.items() if k != "headers"}
    return [out["headers"]["accept"]["value"] for out in answered]


CHROME = "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8"
SAFARI_13 = "image/png,image/svg+xml,image/*;q=0.8,video/*;q=0.8,*/*;q=0.5"
FIREFOX = "image/avif,image/webp,*/*"


def viewer_request(query: dict[str, str], accept: str | None) -> dict:
    return {
        "method": "GET",
        "uri": "/cutouts/products/red shoe.jpg",
        "querystring": {name: {"value": value} for name, value in query.items()},
        "headers": {"accept": {"value": accept}} if accept is not None else {},
        "cookies": {},
    }


def test_accept_is_normalised_to_two_values_for_format_auto():
    auto = {"format": "auto", "signature": "ab" * 32}
    requests = [viewer_request(auto, accept) for accept in (CHROME, FIREFOX, SAFARI_13, "*/*", None)]
    requests.append(viewer_request({**auto, "format": " AUTO "}, CHROME))
    # a weight of zero refuses the type, as the function itself reads Accept
    weighted = ("image/webp;q=0, image/png", "image/webp; Q=0.000", "image/webp;q=0.5")
    requests += [viewer_request(auto, accept) for accept in weighted]
    webp, png = "image/webp", "image/png"
    assert accept_after_viewer_request(requests) == [webp, webp, png, png, png, webp, png, png, webp]


def test_accept_does_not_split_the_cache_for_other_formats():
    queries = ({"format": "png"}, {"format": "webp"}, {"format": "jpeg", "background": "#ffffff"}, {})
    requests = [viewer_request(query, accept) for query in queries for accept in (CHROME, SAFARI_13)]
    assert set(accept_after_viewer_request(requests)) == {"image/png"}


def test_cutout_base_url_is_the_cdn_or_else_the_api():
    outputs = TEMPLATE["Outputs"]
    api_url = outputs["ApiUrl"]["Value"]["Fn::Sub"]
    base = outputs["CutoutBaseUrl"]["Value"]
    assert evaluate(base, DEFAULTS) == {"Fn::Sub": "https://${CutoutDistribution.DomainName}/cutouts/"}
    assert evaluate(base, {**DEFAULTS, "EnableCdn": "false"}) == {"Fn::Sub": api_url + "/cutouts/"}
    assert outputs["CutoutDistributionId"]["Condition"] == "CdnEnabled"
    assert outputs["UrlSigningSecretArn"]["Value"] == {"Ref": "UrlSigningSecret"}


# ---------------------------------------------------------------- buckets


@pytest.mark.parametrize("bucket", sorted(of_type("AWS::S3::Bucket")))
def test_bucket_is_private_and_encrypted(bucket):
    properties = RESOURCES[bucket]["Properties"]
    assert properties["PublicAccessBlockConfiguration"] == dict.fromkeys(
        ["BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"], True
    )
    assert "AccessControl" not in properties and "WebsiteConfiguration" not in properties
    assert properties["OwnershipControls"]["Rules"] == [{"ObjectOwnership": "BucketOwnerEnforced"}]
    (encryption,) = properties["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert encryption["ServerSideEncryptionByDefault"]["SSEAlgorithm"] in ("AES256", "aws:kms")


@pytest.mark.parametrize("bucket", sorted(of_type("AWS::S3::Bucket")))
def test_bucket_refuses_plain_http(bucket):
    policies = [p for p in of_type("AWS::S3::BucketPolicy").values() if p["Properties"]["Bucket"] == {"Ref": bucket}]
    assert len(policies) == 1, f"{bucket} needs exactly one bucket policy"
    statements = policies[0]["Properties"]["PolicyDocument"]["Statement"]
    assert any(
        statement["Effect"] == "Deny"
        and statement["Principal"] == "*"
        and statement["Action"] == "s3:*"
        and statement["Resource"] == [{"Fn::GetAtt": [bucket, "Arn"]}, {"Fn::Sub": f"${{{bucket}.Arn}}/*"}]
        and statement["Condition"] == {"Bool": {"aws:SecureTransport": False}}
        for statement in statements
    )
    grants = [statement for statement in statements if statement["Effect"] != "Deny"]
    assert all(statement["Sid"] == "InventoryReportsIntoManifests" for statement in grants), "only S3 Inventory is let in"


def test_only_s3_inventory_of_the_input_bucket_may_write_manifests_into_the_output_bucket():
    (policy,) = [p for p in of_type("AWS::S3::BucketPolicy").values() if p["Properties"]["Bucket"] == {"Ref": "OutputBucket"}]
    (grant,) = [statement for statement in policy["Properties"]["PolicyDocument"]["Statement"] if statement["Effect"] == "Allow"]
    assert grant["Principal"] == {"Service": "s3.amazonaws.com"} and grant["Action"] == "s3:PutObject"
    assert grant["Resource"] == {"Fn::Sub": "${OutputBucket.Arn}/batch-jobs/manifests/*"}
    assert grant["Condition"] == {
        "ArnLike": {"aws:SourceArn": {"Fn::GetAtt": ["InputBucket", "Arn"]}},
        "StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}},
    }


def test_only_uploads_notify_and_only_the_queue():
    notified = {name: r for name, r in of_type("AWS::S3::Bucket").items() if "NotificationConfiguration" in r["Properties"]}
    assert list(notified) == ["InputBucket"]
    notifications = notified["InputBucket"]["Properties"]["NotificationConfiguration"]
    (queue_notification,) = notifications.pop("QueueConfigurations")
    assert not notifications, "no Lambda or SNS notifications besides the queue"
    assert queue_notification["Queue"] == {"Fn::GetAtt": ["UploadQueue", "Arn"]}
    assert queue_notification["Filter"]["S3Key"]["Rules"] == [{"Name": "prefix", "Value": {"Ref": "UploadPrefix"}}]


def test_uploads_and_results_expire():
    def expiring_prefixes(bucket: str) -> dict:
        rules = RESOURCES[bucket]["Properties"]["LifecycleConfiguration"]["Rules"]
        return {rule["Prefix"]["Ref"]: rule["ExpirationInDays"]["Ref"] for rule in rules if "ExpirationInDays" in rule}

    assert expiring_prefixes("InputBucket") == {"UploadPrefix": "UploadRetentionDays"}
    assert expiring_prefixes("OutputBucket") == {"ResultPrefix": "ResultRetentionDays"}
    # A message redriven from the dead-letter queue must still find its upload.
    dead_letter_days = RESOURCES["DeadLetterQueue"]["Properties"]["MessageRetentionPeriod"] / 86400
    assert int(DEFAULTS["UploadRetentionDays"]) >= dead_letter_days


# What CloudFormation cannot change in place: a new value of these makes a new bucket or queue
# (the old one and what it holds left behind, or deleted) or, for the secret, a new value that
# revokes every signed URL.
LOSING_PROPERTIES = {
    "AWS::S3::Bucket": ("BucketName", "ObjectLockEnabled"),
    "AWS::SQS::Queue": ("QueueName", "FifoQueue"),
    "AWS::SecretsManager::Secret": ("Name", "GenerateSecretString"),
}


def names_a_parameter(value) -> bool:
    """Whether a template value reads any parameter (a Ref, or a ${Name} in a Sub)."""
    text = json.dumps(value)
    return any(f'{{"Ref": "{name}"}}' in text or f"${{{name}}}" in text for name in PARAMETERS)


@pytest.mark.parametrize("name", sorted(name for kind in LOSING_PROPERTIES for name in of_type(kind)))
def test_no_parameter_change_replaces_a_bucket_a_queue_or_the_secret(name):
    # GIVEN a resource that holds what the deployment keeps: objects, messages, the signing secret
    resource = RESOURCES[name]
    # THEN no parameter reaches a property whose change would replace it: `sam deploy
    # --parameter-overrides ...` keeps it and what it holds (README "Changing parameters")
    assert "Condition" not in resource
    assert not [key for key in LOSING_PROPERTIES[resource["Type"]] if names_a_parameter(resource["Properties"].get(key))]


def test_the_stack_keeps_nothing_back_when_it_is_deleted():
    # THEN `sam delete` deletes every resource, the buckets too once emptied (README "Tear down"):
    # none is retained, to be found later holding photos and results with no stack to own them
    kept = {name: resource.get("DeletionPolicy") for name, resource in RESOURCES.items()}
    assert {name: policy for name, policy in kept.items() if policy not in (None, "Delete")} == {}


# ---------------------------------------------------------------- queue


def test_failed_uploads_end_in_a_dead_letter_queue():
    redrive = RESOURCES["UploadQueue"]["Properties"]["RedrivePolicy"]
    assert redrive["deadLetterTargetArn"] == {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]}
    assert redrive["maxReceiveCount"] == {"Ref": "MaxReceiveCount"}
    assert 1 <= int(DEFAULTS["MaxReceiveCount"]) <= 10


def test_queue_only_accepts_the_input_bucket_over_tls():
    (policy,) = of_type("AWS::SQS::QueuePolicy").values()
    allow, deny = policy["Properties"]["PolicyDocument"]["Statement"]
    assert allow["Principal"] == {"Service": "s3.amazonaws.com"} and allow["Action"] == "sqs:SendMessage"
    # The source ARN is built from the same expression as the bucket's name.
    source = allow["Condition"]["ArnEquals"]["aws:SourceArn"]["Fn::Sub"]
    bucket_name = RESOURCES["InputBucket"]["Properties"]["BucketName"]["Fn::Join"]
    assert source[0].endswith(":s3:::" + bucket_name[1][0] + "-${StackUuid}")
    assert source[1]["StackUuid"] == bucket_name[1][1]
    assert deny["Effect"] == "Deny" and deny["Condition"] == {"Bool": {"aws:SecureTransport": False}}


def test_worker_reports_partial_batch_failures():
    (event,) = RESOURCES["WorkerFunction"]["Properties"]["Events"].values()
    assert event["Type"] == "SQS"
    properties = event["Properties"]
    assert properties["Queue"] == {"Fn::GetAtt": ["UploadQueue", "Arn"]}
    assert properties["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert properties["BatchSize"] == {"Ref": "BatchSize"}
    assert properties["ScalingConfig"] == {"MaximumConcurrency": {"Ref": "MaxConcurrency"}}
    # Above 10 messages SQS needs a batching window, which this template does not set.
    assert PARAMETERS["BatchSize"]["MaxValue"] <= 10


def test_visibility_timeout_is_six_times_every_allowed_worker_timeout():
    visibility = TEMPLATE["Mappings"]["QueueVisibility"]
    assert RESOURCES["WorkerFunction"]["Properties"]["Timeout"] == {"Ref": "WorkerTimeout"}
    assert RESOURCES["UploadQueue"]["Properties"]["VisibilityTimeout"] == {
        "Fn::FindInMap": ["QueueVisibility", {"Ref": "WorkerTimeout"}, "Seconds"]
    }
    allowed = [str(value) for value in PARAMETERS["WorkerTimeout"]["AllowedValues"]]
    assert sorted(visibility, key=int) == sorted(allowed, key=int)
    for timeout in allowed:
        assert visibility[timeout]["Seconds"] >= 6 * int(timeout)


# ---------------------------------------------------------------- IAM


def s3_grants(function: str, parameters: dict[str, str] = DEFAULTS) -> set[tuple[str, str]]:
    """(action, resource) pairs for S3 under the given parameters, resources written as in the template."""
    grants = set()
    for statement in role_statements(function):
        assert statement["Effect"] == "Allow"
        for action in as_list(statement["Action"]):
            if action.startswith("s3:"):
                for resource in as_list(evaluate(statement["Resource"], parameters)):
                    grants.add((action, resource.get("Fn::Sub") or "{}.Arn".format(*resource["Fn::GetAtt"])))
    return grants


LIST_BOTH_BUCKETS = {("s3:ListBucket", "InputBucket.Arn"), ("s3:ListBucket", "OutputBucket.Arn")}
API_GRANTS = {
    ("s3:GetObject", "${InputBucket.Arn}/*"),
    ("s3:PutObject", "${InputBucket.Arn}/${UploadPrefix}*"),
    ("s3:GetObject", "${OutputBucket.Arn}/${ResultPrefix}*"),
    ("s3:PutObject", "${OutputBucket.Arn}/${ResultPrefix}*"),
    *LIST_BOTH_BUCKETS,
}


def test_worker_reads_only_uploads_and_writes_only_results():
    assert s3_grants("WorkerFunction") == {
        ("s3:GetObject", "${InputBucket.Arn}/${UploadPrefix}*"),
        ("s3:GetObject", "${OutputBucket.Arn}/${ResultPrefix}*"),
        ("s3:PutObject", "${OutputBucket.Arn}/${ResultPrefix}*"),
        *LIST_BOTH_BUCKETS,
    }


def test_api_reads_inputs_writes_results_and_presigns_only_uploads():
    assert s3_grants("ApiFunction") == API_GRANTS


@pytest.mark.parametrize("function", sorted(of_type("AWS::Serverless::Function")))
def test_roles_name_every_resource(function):
    role = RESOURCES[sam_template.referenced_id(RESOURCES[function]["Properties"]["Role"])]
    assert "ManagedPolicyArns" not in role["Properties"], "managed policies reach beyond this stack"
    assert role["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {"Service": "lambda.amazonaws.com"}
    for statement in role_statements(function):
        assert all("*" not in action for action in as_list(statement["Action"])), statement
        assert all(resource != "*" for resource in as_list(statement["Resource"])), statement
    log_statement = next(statement for statement in role_statements(function) if statement["Sid"] == "WriteLogs")
    log_group = RESOURCES[function]["Properties"]["LoggingConfig"]["LogGroup"]
    assert log_statement["Resource"] == {"Fn::GetAtt": [log_group["Ref"], "Arn"]}


def test_sqs_rights_are_the_workers_alone_and_only_on_its_queue():
    worker = [s for s in role_statements("WorkerFunction") if any(a.startswith("sqs:") for a in as_list(s["Action"]))]
    assert [statement["Resource"] for statement in worker] == [{"Fn::GetAtt": ["UploadQueue", "Arn"]}]
    assert not [s for s in role_statements("ApiFunction") if any(a.startswith("sqs:") for a in as_list(s["Action"]))]


# ---------------------------------------------------------------- functions, alarms, outputs


def test_both_functions_run_the_same_image_with_their_own_handler():
    functions = of_type("AWS::Serverless::Function")
    assert {name: f["Properties"]["ImageConfig"]["Command"] for name, f in functions.items()} == {
        "ApiFunction": ["handler.app.api_handler"],
        "WorkerFunction": ["handler.app.queue_handler"],
        "BatchFunction": ["handler.app.batch_handler"],
    }
    assert all(f["Properties"]["PackageType"] == "Image" for f in functions.values())
    assert len({str(f["Metadata"]) for f in functions.values()}) == 1
    assert RESOURCES["ApiFunction"]["Properties"]["Timeout"] <= 29, "API Gateway stops waiting after 29 s"


def test_the_api_takes_only_bodies_that_fit_in_a_lambda_invocation():
    # Lambda takes 6 MB of event; the body arrives base64-encoded, beside headers and context
    limit = int(RESOURCES["ApiFunction"]["Properties"]["Environment"]["Variables"]["MAX_INPUT_BYTES"])
    assert 4 * -(-limit // 3) + 64 * 1024 <= 6 * 1024 * 1024
    assert limit >= 4_000_000  # and it stays large enough for a typical 12 MP phone JPEG


def test_environment_names_are_the_ones_the_code_reads():
    source = (ROOT / "handler" / "settings.py").read_text()
    read = {
        node.args[0].value
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "get" and node.args
        if isinstance(node.args[0], ast.Constant)
    }
    for function in sam_template.functions(TEMPLATE):
        unknown = {name for name in function.environment if not name.startswith("POWERTOOLS_")} - read
        assert not unknown, f"{function.name} sets {unknown}, which handler/settings.py never reads"


def test_parameters_cover_size_architecture_timeout_and_cors():
    assert set(PARAMETERS["Architecture"]["AllowedValues"]) == {"x86_64", "arm64"}
    assert TEMPLATE["Globals"]["Function"]["Architectures"] == [{"Ref": "Architecture"}]
    assert PARAMETERS["CorsOrigins"]["Type"] == "CommaDelimitedList"
    assert RESOURCES["ApiFunction"]["Properties"]["Environment"]["Variables"]["CORS_ORIGINS"] == {
        "Fn::Join": [",", {"Ref": "CorsOrigins"}]
    }


def test_alarms_watch_errors_throttles_the_api_answers_and_the_dead_letter_queue():
    watched = set()
    for alarm in of_type("AWS::CloudWatch::Alarm").values():
        properties = alarm["Properties"]
        dimension = properties["Dimensions"][0]
        watched.add((properties["MetricName"], sam_template.referenced_id(dimension["Value"])))
    assert watched == {
        ("Errors", "ApiFunction"),
        ("Throttles", "ApiFunction"),
        ("5XXError", "AWS::StackName"),
        ("Errors", "WorkerFunction"),
        ("Throttles", "WorkerFunction"),
        ("ApproximateNumberOfMessagesVisible", "DeadLetterQueue"),
    }


def test_each_stack_has_metrics_and_logs_of_its_own():
    # Powertools names the metrics' one dimension (and every log line's "service") after
    # POWERTOOLS_SERVICE_NAME; the namespace is shared, so a fixed name mixed a dev stack's
    # latency into prod's in one account.
    variables = TEMPLATE["Globals"]["Function"]["Environment"]["Variables"]
    assert variables["POWERTOOLS_SERVICE_NAME"] == {"Ref": "AWS::StackName"}


def test_the_server_error_alarm_watches_the_deployed_api_and_stage():
    # The API function answers its own unexpected errors with a 500 (tests/faults), which
    # Lambda's Errors metric never counts: only the gateway's 5xx count sees them. Its
    # dimensions must name the RestApi as deployed, or the alarm watches a metric that never exists.
    expanded = sam_template.expand(sam_template.load())["Resources"]
    (stage,) = [resource for resource in expanded.values() if resource["Type"] == "AWS::ApiGateway::Stage"]
    api = expanded["Api"]["Properties"]
    assert "Name" not in api  # so the RestApi is named by its definition's title
    alarm = RESOURCES["ApiServerErrorsAlarm"]["Properties"]
    assert (alarm["Namespace"], alarm["MetricName"]) == ("AWS/ApiGateway", "5XXError")
    dimensions = {dimension["Name"]: dimension["Value"] for dimension in alarm["Dimensions"]}
    assert dimensions == {"ApiName": api["Body"]["info"]["title"], "Stage": stage["Properties"]["StageName"]}


def test_outputs_tell_how_to_reach_the_service():
    outputs = TEMPLATE["Outputs"]
    assert {"ApiUrl", "ApiKeyId", "InputBucketName", "OutputBucketName"} <= set(outputs)
    assert outputs["ApiKeyId"]["Condition"] == "ApiKeyAuth"
    assert "${Api}.execute-api." in outputs["ApiUrl"]["Value"]["Fn::Sub"]


def test_samconfig_deploys_with_the_template_roles_and_an_image_repository():
    config = tomllib.loads((ROOT / "samconfig.toml").read_text())
    deploy = config["default"]["deploy"]["parameters"]
    assert deploy["capabilities"] == "CAPABILITY_IAM"
    assert deploy["resolve_image_repos"] is True
    assert config["default"]["global"]["parameters"]["stack_name"]


def test_browsers_may_put_uploads_from_the_allowed_origins_and_get_results_after_a_redirect():
    # /uploads sends browsers to presigned PUTs on the input bucket, from the page's own origin.
    (upload_rule,) = RESOURCES["InputBucket"]["Properties"]["CorsConfiguration"]["CorsRules"]
    assert (upload_rule["AllowedMethods"], upload_rule["AllowedOrigins"]) == (["PUT"], {"Ref": "CorsOrigins"})
    # The API's 303 sends them on to presigned GETs on the output bucket, and a browser that
    # follows a redirect across origins sends "Origin: null": only "*" lets it read the result.
    (result_rule,) = RESOURCES["OutputBucket"]["Properties"]["CorsConfiguration"]["CorsRules"]
    assert (result_rule["AllowedMethods"], result_rule["AllowedOrigins"]) == (["GET", "HEAD"], ["*"])


# ---------------------------------------------------------------- memory sizes, S3 Batch Operations


def test_the_api_and_the_workers_each_have_their_memory_size():
    # The API wants latency, the queue worker and the batch function the lowest cost per image.
    assert "MemorySize" not in PARAMETERS and "MemorySize" not in TEMPLATE["Globals"]["Function"]
    memory = {name: f["Properties"]["MemorySize"] for name, f in of_type("AWS::Serverless::Function").items()}
    assert memory == {
        "ApiFunction": {"Ref": "ApiMemorySize"},
        "WorkerFunction": {"Ref": "WorkerMemorySize"},
        "BatchFunction": {"Ref": "WorkerMemorySize"},
    }
    for name in ("ApiMemorySize", "WorkerMemorySize"):
        # Lambda's range; below 1 GB a 12 MP photo does not fit beside the model.
        assert PARAMETERS[name]["MinValue"] >= 1024 and PARAMETERS[name]["MaxValue"] <= 10240
        assert PARAMETERS[name]["MinValue"] <= int(DEFAULTS[name]) <= PARAMETERS[name]["MaxValue"]
    # The cheapest size per image is never above the size where latency stops improving.
    assert int(DEFAULTS["WorkerMemorySize"]) <= int(DEFAULTS["ApiMemorySize"])


def test_only_s3_batch_operations_may_assume_the_batch_role():
    role = RESOURCES["BatchOperationsRole"]["Properties"]
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust == {"Effect": "Allow", "Principal": {"Service": "batchoperations.s3.amazonaws.com"}, "Action": "sts:AssumeRole"}
    assert "ManagedPolicyArns" not in role


def test_the_batch_role_invokes_only_the_batch_function_and_touches_only_job_files():
    policies = RESOURCES["BatchOperationsRole"]["Properties"]["Policies"]
    statements = [statement for policy in policies for statement in policy["PolicyDocument"]["Statement"]]
    grants = set()
    for statement in statements:
        assert statement["Effect"] == "Allow"
        for action in as_list(statement["Action"]):
            for resource in as_list(statement["Resource"]):
                grants.add((action, resource.get("Fn::Sub") or "{}.{}".format(*resource["Fn::GetAtt"])))
    assert grants == {
        ("lambda:InvokeFunction", "BatchFunction.Arn"),
        ("s3:GetObject", "${OutputBucket.Arn}/batch-jobs/manifests/*"),
        ("s3:GetObjectVersion", "${OutputBucket.Arn}/batch-jobs/manifests/*"),
        ("s3:PutObject", "${OutputBucket.Arn}/batch-jobs/reports/*"),
        ("s3:GetBucketLocation", "OutputBucket.Arn"),
    }


def test_the_batch_function_reads_any_input_and_writes_only_results():
    # A backfill reaches photos that were never uploads, so the whole input bucket, but no more.
    assert s3_grants("BatchFunction") == {
        ("s3:GetObject", "${InputBucket.Arn}/*"),
        ("s3:GetObject", "${OutputBucket.Arn}/${ResultPrefix}*"),
        ("s3:PutObject", "${OutputBucket.Arn}/${ResultPrefix}*"),
        *LIST_BOTH_BUCKETS,
    }
    assert not RESOURCES["BatchFunction"]["Properties"].get("Events"), "S3 Batch Operations invokes it directly"


def test_batch_concurrency_is_reserved_only_when_asked_for():
    reserved = RESOURCES["BatchFunction"]["Properties"]["ReservedConcurrentExecutions"]
    assert evaluate(reserved, {**DEFAULTS, "BatchConcurrency": "0"}) == {"Ref": "AWS::NoValue"}
    assert evaluate(reserved, {**DEFAULTS, "BatchConcurrency": "50"}) == {"Ref": "BatchConcurrency"}


def test_outputs_name_what_a_batch_job_needs():
    outputs = TEMPLATE["Outputs"]
    assert outputs["BatchFunctionArn"]["Value"] == {"Fn::GetAtt": ["BatchFunction", "Arn"]}
    assert outputs["BatchOperationsRoleArn"]["Value"] == {"Fn::GetAtt": ["BatchOperationsRole", "Arn"]}


def test_an_architecture_override_in_samconfig_reaches_sam_build_too():
    # GIVEN samconfig.toml's overrides, set or offered as an example ("# parameter_overrides = ..."),
    # with the section each sits in
    section, overrides = None, {}
    for line in (ROOT / "samconfig.toml").read_text().splitlines():
        if line.startswith("["):
            section = line.strip("[]")
        elif line.lstrip("# ").startswith("parameter_overrides"):
            overrides[section] = line.split("=", 1)[1]
    assert overrides, "samconfig.toml shows no parameter_overrides"
    # THEN every one naming Architecture is where `sam build` reads it as well as `sam deploy`: the
    # image is built for the architecture `sam build` is given (the template's x86_64 otherwise), and
    # an x86_64 image on arm64 functions fails every invocation ("exec format error"). Regression:
    # the example sat in [default.deploy.parameters], which `sam build` does not read
    naming = [section for section, value in overrides.items() if "Architecture=" in value]
    assert naming and set(naming) <= {"default.global.parameters", "default.build.parameters"}, naming
