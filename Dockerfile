# The Lambda container image for both functions (template.yaml picks the handler per function
# with ImageConfig.Command). Multi-architecture base: `sam build` builds x86_64 or arm64 to
# match the template's Architecture parameter.
FROM public.ecr.aws/lambda/python:3.12

# Lambda's filesystem is read-only except /tmp: bytecode is compiled at build time instead of
# being written on first import.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# Layers from least to most often changed: dependencies, then the model, then the code.
# The same pins the tests run against; wheels only, since the base image has no compiler.
COPY requirements.txt ${LAMBDA_TASK_ROOT}/
RUN pip install --no-cache-dir --only-binary=:all: --target "${LAMBDA_TASK_ROOT}" -r "${LAMBDA_TASK_ROOT}/requirements.txt"

COPY model/ ${LAMBDA_TASK_ROOT}/model/
COPY handler/ ${LAMBDA_TASK_ROOT}/handler/
RUN python -m compileall -q "${LAMBDA_TASK_ROOT}/handler"

CMD ["handler.app.api_handler"]
