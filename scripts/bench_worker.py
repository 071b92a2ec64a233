"""One side of the benchmark, run by scripts/bench.py in a process of its own.

    python scripts/bench_worker.py ours|rembg serve          # then JSON requests on stdin, one a line:
                                                             # {"photo", "refine", "one_core", "save"}, {"infer": N}
                                                             # or, ours only, {"decode": PHOTO}
    python scripts/bench_worker.py ours|rembg once PHOTO     # fresh process: one photo, report peak RSS
    python scripts/bench_worker.py ours|rembg cold           # import and load the model, print "ready"
    python scripts/bench_worker.py ours|rembg infer N        # time the model alone N times
    python scripts/bench_worker.py rembg macs                # multiply-accumulates of the ONNX graph

"ours" runs in the project's .venv through ``handler.pipeline.remove_background`` with
default Options and a strip pool of ``settings.threads`` workers (what the CLI and the API
run), and reports the seconds of each stage; "rembg" runs in .bench-venv with
``rembg.remove(bytes, session=new_session("u2netp"))``, reading this repo's model file.
Only the standard library is imported here at the top: each side imports its own stack.
"""

import json
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
INFERENCE_SHAPE = (1, 3, 320, 320)


def peak_rss_mb() -> float:
    """This process's peak resident set in MB: VmHWM, the high-water mark of its own memory map.

    Not getrusage's ru_maxrss: Linux carries the parent's RSS at fork into the child's
    ru_maxrss across exec, so a child of a big benchmark process reported the parent's size.
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024  # kB
    raise SystemExit("peak RSS needs Linux's /proc/self/status (VmHWM)")


def _rembg_session():
    import pooch

    def refuse_download(*args, **kwargs):
        raise SystemExit(f"rembg tried to download a model: U2NET_HOME={os.environ.get('U2NET_HOME')} lacks u2netp.onnx")

    pooch.retrieve = refuse_download  # the benchmark must use the repo's model file, never the network
    from rembg import new_session
    from rembg.sessions.u2netp import U2netpSession

    if U2netpSession.resolve_existing("u2netp.onnx") is None:
        raise SystemExit("rembg cannot find u2netp.onnx under U2NET_HOME")
    return new_session("u2netp")


def _load(implementation: str):
    """(cut out: bytes, refine, one_core -> (bytes, seconds per stage), run model: tensor -> None,
    full-size decode: bytes -> image, ours only), with the model loaded.

    ``one_core`` runs our full-resolution steps on the serial pool (the model keeps its threads).
    """
    if implementation == "rembg":
        from rembg import remove

        session = _rembg_session()
        inner = session.inner_session
        feed_name = inner.get_inputs()[0].name
        return (
            lambda data, refine, one_core: (remove(data, session=session), {}),
            lambda tensor: inner.run(None, {feed_name: tensor}),
            None,
        )
    sys.path.insert(0, str(REPO))
    from handler import decode
    from handler.options import Options
    from handler.parallel import SERIAL, StripPool
    from handler.pipeline import remove_background
    from handler.segmenter import Segmenter
    from handler.settings import Settings

    settings = Settings.from_env()
    segmenter = Segmenter(settings.model_path, threads=settings.threads)
    strips = StripPool(settings.threads)
    options = {True: Options(), False: Options(refine=False)}

    def cut_out(data: bytes, refine: bool, one_core: bool) -> tuple[bytes, dict]:
        pool = SERIAL if one_core else strips
        result = remove_background(data, options[refine], segmenter=segmenter, max_pixels=settings.max_input_pixels, strips=pool)
        return result.data, result.stage_seconds

    return cut_out, segmenter.run, lambda data: decode.decode(data, max_pixels=settings.max_input_pixels)


def _cold(implementation: str) -> None:
    """Import what a Lambda cold start imports and load the model; the parent times it."""
    if implementation == "rembg":
        _rembg_session()
    else:
        sys.path.insert(0, str(REPO))
        import handler.app  # noqa: F401  (the API module as Lambda imports it: Powertools, resolver, session)
    print("ready", flush=True)


def _time_model(run_model, runs: int) -> list[float]:
    """Seconds of each of ``runs`` model runs on one 1x3x320x320 input, after a run that warms up."""
    import numpy as np

    tensor = np.random.default_rng(0).standard_normal(INFERENCE_SHAPE).astype(np.float32)
    run_model(tensor)  # the first run plans memory and warms caches
    seconds = []
    for _ in range(runs):
        started = time.perf_counter()
        run_model(tensor)
        seconds.append(time.perf_counter() - started)
    return seconds


def _serve(implementation: str) -> None:
    cut_out, run_model, decode = _load(implementation)
    print("ready", flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        if "infer" in request:  # the floor, timed in the same process as the photos around it
            print(json.dumps({"seconds": _time_model(run_model, request["infer"])}), flush=True)
            continue
        if "decode" in request:  # the photo's full-size decode alone, as the cut-out decodes it
            data = Path(request["decode"]).read_bytes()
            started = time.perf_counter()
            decode(data)
            print(json.dumps({"seconds": time.perf_counter() - started}), flush=True)
            continue
        data = Path(request["photo"]).read_bytes()
        started = time.perf_counter()
        output, stages = cut_out(data, request.get("refine", True), request.get("one_core", False))
        seconds = time.perf_counter() - started
        if request.get("save"):
            Path(request["save"]).write_bytes(output)
        print(json.dumps({"seconds": seconds, "bytes": len(output), "stages": stages}), flush=True)


def _once(implementation: str, photo: str) -> None:
    cut_out, _, _ = _load(implementation)
    output, _ = cut_out(Path(photo).read_bytes(), True, False)
    print(json.dumps({"bytes": len(output), "peak_rss_mb": peak_rss_mb()}))


def _infer(implementation: str, runs: int) -> None:
    _, run_model, _ = _load(implementation)
    print(json.dumps({"seconds": _time_model(run_model, runs)}))


def _conv_macs(model_path: Path) -> dict:
    """Multiply-accumulates of every Conv node at the model's 1x3x320x320 input.

    Per Conv: output elements x (input channels / groups) x kernel height x kernel width.
    Shapes come from ONNX shape inference; other ops (sigmoid, resize, concat, add) are a
    rounding error next to the convolutions and are not counted.
    """
    import onnx
    from onnx import numpy_helper, shape_inference

    model = shape_inference.infer_shapes(onnx.load(str(model_path)))
    graph = model.graph
    shapes = {
        value.name: [d.dim_value for d in value.type.tensor_type.shape.dim]
        for value in [*graph.value_info, *graph.input, *graph.output]
    }
    weights = {tensor.name: numpy_helper.to_array(tensor).shape for tensor in graph.initializer}
    total, count = 0, 0
    for node in graph.node:
        if node.op_type != "Conv":
            continue
        out_channels, in_per_group, kernel_h, kernel_w = weights[node.input[1]]
        _, _, out_h, out_w = shapes[node.output[0]]
        total += out_channels * out_h * out_w * in_per_group * kernel_h * kernel_w
        count += 1
    return {"conv_nodes": count, "macs": total}


def main() -> None:
    implementation, command, *rest = sys.argv[1:]
    if command == "serve":
        _serve(implementation)
    elif command == "once":
        _once(implementation, rest[0])
    elif command == "cold":
        _cold(implementation)
    elif command == "infer":
        _infer(implementation, int(rest[0]))
    elif command == "macs":
        print(json.dumps(_conv_macs(REPO / "model" / "u2netp.onnx")))
    else:
        raise SystemExit(f"unknown command {command!r}")


if __name__ == "__main__":
    main()
