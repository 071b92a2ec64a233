"""The local CLI, in-process on tmp_path files, plus one real `python -m handler` run."""

import os
import subprocess
import sys
from dataclasses import fields, replace

import pytest
from helpers import EXAMPLES, encode, example_photo, open_result
from PIL import Image

from handler import __version__
from handler.cli import main
from handler.options import Options
from handler.pipeline import remove_background

SMALL = (120, 80)


@pytest.fixture(scope="module")
def jpeg() -> bytes:
    return encode(example_photo("coffee", SMALL), "JPEG")


def test_single_file_to_file(tmp_path, jpeg, capsys):
    source, destination = tmp_path / "cup.jpg", tmp_path / "out" / "cup-cutout.png"
    source.write_bytes(jpeg)

    assert main([str(source), "-o", str(destination)]) == 0

    image = open_result(destination.read_bytes())
    assert (image.format, image.mode, image.size) == ("PNG", "RGBA", SMALL)
    assert "done 1, failed 0" in capsys.readouterr().out


def test_single_file_into_a_folder(tmp_path, jpeg):
    source = tmp_path / "cup.jpg"
    source.write_bytes(jpeg)

    assert main([str(source), "-o", str(tmp_path / "out"), "--mask"]) == 0

    assert open_result((tmp_path / "out" / "cup.png").read_bytes()).mode == "L"


def test_an_output_ending_in_a_slash_is_a_folder_even_with_a_dot_in_its_name(tmp_path, jpeg):
    source = tmp_path / "cup.jpg"
    source.write_bytes(jpeg)

    assert main([str(source), "-o", f"{tmp_path / 'out.v2'}/"]) == 0

    assert open_result((tmp_path / "out.v2" / "cup.png").read_bytes()).mode == "RGBA"


def test_folder_tree_is_mirrored_with_the_format_extension(tmp_path, jpeg, capsys):
    source = tmp_path / "in"
    (source / "a" / "deep").mkdir(parents=True)
    (source / "top.jpg").write_bytes(jpeg)
    (source / "a" / "b.jpg").write_bytes(jpeg)
    (source / "a" / "deep" / "c.PNG").write_bytes(encode(example_photo("chelsea", SMALL), "PNG"))
    (source / "a" / "notes.txt").write_text("not an image, and not named like one: skipped")
    output = tmp_path / "out"

    assert main([str(source), "-o", str(output), "--format", "webp"]) == 0

    written = sorted(path.relative_to(output).as_posix() for path in output.rglob("*") if path.is_file())
    assert written == ["a/b.webp", "a/deep/c.webp", "top.webp"]
    for path in output.rglob("*.webp"):
        image = open_result(path.read_bytes())
        assert (image.format, image.mode, image.size) == ("WEBP", "RGBA", SMALL)
    assert "done 3, failed 0" in capsys.readouterr().out


def test_files_and_folders_named_as_users_name_them_are_mirrored_by_name(tmp_path, jpeg, capsys):
    # GIVEN photos named as people name them: Cyrillic folder, '+' and parentheses, '%', emoji,
    # "café" composed (NFC) beside "café" decomposed (NFD, as macOS writes names): two files here
    source = tmp_path / "in"
    names = ["Фото 2024/my photo+1 (copy).HEIC", "100%.jpg", "\U0001f600 smile.jpg", "caf\u00e9.jpg", "cafe\u0301.jpg"]
    for name in names:
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        (source / name).write_bytes(jpeg)
    output = tmp_path / "out"
    # WHEN the folder is cut out
    assert main([str(source), "-o", str(output)]) == 0
    # THEN each has its result under its own name, the extension the format's
    written = sorted(path.relative_to(output).as_posix() for path in output.rglob("*") if path.is_file())
    assert written == sorted(name.rsplit(".", 1)[0] + ".png" for name in names)
    assert f"done {len(names)}, failed 0" in capsys.readouterr().out


def test_a_failed_input_is_reported_and_the_good_ones_are_written(tmp_path, jpeg, capsys):
    source = tmp_path / "in"
    source.mkdir()
    (source / "good.jpg").write_bytes(jpeg)
    (source / "x.jpg").write_text("this is a text file with an image's name")
    (source / "half.jpg").write_bytes(jpeg[: len(jpeg) // 2])
    output = tmp_path / "out"

    assert main([str(source), "-o", str(output), "--background", "#ffffff", "--format", "jpeg"]) == 1

    assert open_result((output / "good.jpg").read_bytes()).format == "JPEG"
    assert not (output / "x.jpg").exists() and not (output / "half.jpg").exists()
    captured = capsys.readouterr()
    assert "done 1, failed 2" in captured.out
    assert f"failed: {source / 'x.jpg'}: the bytes are not an image in a supported format" in captured.err
    assert f"failed: {source / 'half.jpg'}: the JPEG image is truncated or corrupt" in captured.err
    assert "Traceback" not in captured.err


def test_two_inputs_that_would_write_the_same_result_do_not_overwrite(tmp_path, jpeg, capsys):
    source = tmp_path / "in"
    source.mkdir()
    (source / "cup.jpg").write_bytes(jpeg)
    (source / "cup.png").write_bytes(encode(example_photo("chelsea", SMALL), "PNG"))

    assert main([str(source), "-o", str(tmp_path / "out"), "--mask"]) == 1

    assert "would overwrite the result of" in capsys.readouterr().err


@pytest.mark.parametrize(
    "size, flag, refine",
    # Each photo gets the refine flag that differs from its default: off up to 640 px, on above
    [(SMALL, "--refine", True), ((720, 480), "--no-refine", False)],
    ids=["refine", "no-refine"],
)
def test_options_reach_the_pipeline(tmp_path, segmenter, size, flag, refine):
    photo = encode(example_photo("coffee", size), "JPEG")
    source, destination = tmp_path / "cup.jpg", tmp_path / "cup.png"
    source.write_bytes(photo)

    assert main([str(source), "-o", str(destination), "--crop", "--max-size", "60", "--hard", flag]) == 0

    image = open_result(destination.read_bytes())
    assert image.mode == "RGBA" and max(image.size) == 60 and image.size != (60, 40)  # cropped, then fitted
    # Every option arrived: the file is the pipeline's result for all of them, which the refine flag changes
    options = Options(crop=True, max_size=60, hard=True, refine=refine)
    expected = remove_background(photo, options, segmenter=segmenter, max_pixels=40_000_000).data
    assert destination.read_bytes() == expected
    assert expected != remove_background(photo, replace(options, refine=None), segmenter=segmenter, max_pixels=40_000_000).data


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--background", "#GGG"], "background must be a colour like #RRGGBB, not '#GGG'"),
        (["--format", "jpeg"], "format jpeg has no alpha channel"),
        (["--format", "gif"], "format must be png, webp or jpeg, not 'gif'"),
        (["--max-size", "0"], "max_size must be between 1 and"),
        (["--max-size", "abc"], "invalid int value: 'abc'"),
    ],
)
def test_bad_options_exit_2_with_the_rule(tmp_path, jpeg, capsys, arguments, message):
    source = tmp_path / "cup.jpg"
    source.write_bytes(jpeg)

    with pytest.raises(SystemExit) as exited:
        main([str(source), "-o", str(tmp_path / "out"), *arguments])

    assert exited.value.code == 2
    assert message in capsys.readouterr().err


def test_missing_input_exits_2(tmp_path, capsys):
    with pytest.raises(SystemExit) as exited:
        main([str(tmp_path / "nowhere.jpg"), "-o", str(tmp_path / "out")])

    assert exited.value.code == 2
    assert "no such file or folder" in capsys.readouterr().err


def test_folder_without_images_exits_2(tmp_path, capsys):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "readme.txt").write_text("nothing to cut out")

    with pytest.raises(SystemExit) as exited:
        main([str(tmp_path / "in"), "-o", str(tmp_path / "out")])

    assert exited.value.code == 2
    assert "no images found" in capsys.readouterr().err


def test_help_mentions_every_option(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["--help"])

    assert exited.value.code == 0
    text = capsys.readouterr().out
    cli_options = ["--" + field.name.replace("_", "-") for field in fields(Options) if field.name != "store"]
    for option in [*cli_options, "--output", "--model", "--version"]:
        assert option in text, f"{option} is missing from --help"


def test_version(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["--version"])

    assert exited.value.code == 0
    assert __version__ in capsys.readouterr().out


def test_help_and_version_skip_the_heavy_imports(repo_root):
    # A fresh interpreter: the answer must come before numpy and onnxruntime are imported.
    script = (
        "import sys\nfrom handler.cli import main\n"
        "for arguments in (['--help'], ['--version']):\n"
        "    try:\n        main(arguments)\n    except SystemExit:\n        pass\n"
        "print('heavy:', sorted({'numpy', 'onnxruntime', 'PIL'} & set(sys.modules)), file=sys.stderr)\n"
    )
    completed = subprocess.run([sys.executable, "-c", script], cwd=repo_root, capture_output=True, text=True, timeout=60)

    assert completed.returncode == 0, completed.stderr
    assert "heavy: []" in completed.stderr


def test_python_dash_m_handler_runs(repo_root, tmp_path, jpeg):
    source, destination = tmp_path / "cup.jpg", tmp_path / "mask.png"
    source.write_bytes(jpeg)

    completed = subprocess.run(
        [sys.executable, "-m", "handler", str(source), "-o", str(destination), "--mask"],
        cwd=repo_root,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert completed.returncode == 0, completed.stderr
    assert "done 1, failed 0" in completed.stdout
    image = open_result(destination.read_bytes())
    assert (image.mode, image.size) == ("L", SMALL)


def test_names_that_are_not_utf_8_are_read_written_and_shown(repo_root, tmp_path, jpeg):
    # GIVEN a photo and an output folder named in Latin-1 (an old archive's names; Linux takes any bytes)
    source, output = tmp_path / os.fsdecode(b"caf\xe9.jpg"), tmp_path / os.fsdecode(b"r\xe9sultats")
    try:
        source.write_bytes(jpeg)
    except OSError:
        pytest.skip("this file system takes UTF-8 names only")
    # WHEN `python -m handler` runs with a strict UTF-8 stdout, as in a locale such as en_US.UTF-8
    # (this machine's C.UTF-8 would escape what cannot be encoded)
    completed = subprocess.run(
        [sys.executable, "-m", "handler", str(source), "-o", str(output)],
        cwd=repo_root,
        env={**os.environ, "PYTHONIOENCODING": "utf-8:strict"},
        capture_output=True,
        timeout=120,
    )
    # THEN the result is written under the same bytes, and the summary shows the folder's name
    # escaped: it ended in a UnicodeEncodeError traceback and exit status 1, the work done
    assert completed.returncode == 0, completed.stderr.decode(errors="replace")[-2000:]
    assert open_result((output / os.fsdecode(b"caf\xe9.png")).read_bytes()).mode == "RGBA"
    assert completed.stdout.decode().rstrip().endswith("r\\xe9sultats")


def test_max_input_pixels_from_the_environment_limits_the_cli(tmp_path, jpeg, capsys, monkeypatch):
    # GIVEN the README's MAX_INPUT_PIXELS, one of the settings the CLI shares with the Lambda, below the photo's 9,600
    (tmp_path / "cup.jpg").write_bytes(jpeg)
    monkeypatch.setenv("MAX_INPUT_PIXELS", "5000")
    # The decoder hands the limit to Pillow's process-wide bomb check: restored after, for the other tests' photos
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", Image.MAX_IMAGE_PIXELS)
    # WHEN the CLI cuts it out
    assert main([str(tmp_path / "cup.jpg"), "-o", str(tmp_path / "cup.png")]) == 1
    # THEN it fails with the limit, and writes nothing
    assert "the limit is 5,000" in capsys.readouterr().err
    assert not (tmp_path / "cup.png").exists()


def test_an_output_file_named_for_another_format_is_refused(tmp_path, capsys):
    # A WebP written into a .png file would mislead every viewer that trusts the name.
    with pytest.raises(SystemExit) as exit_info:
        main([str(EXAMPLES / "coffee.jpg"), "-o", str(tmp_path / "cutout.png"), "--format", "webp"])
    assert exit_info.value.code == 2
    assert "does not match --format webp" in capsys.readouterr().err
    assert not (tmp_path / "cutout.png").exists()


def test_a_result_never_overwrites_an_input(tmp_path, jpeg, capsys):
    # Into the input folder: cup.jpg's result is cup.png, the name of another photo there.
    photo = encode(example_photo("chelsea", SMALL), "PNG")
    (tmp_path / "cup.jpg").write_bytes(jpeg)
    (tmp_path / "cup.png").write_bytes(photo)

    assert main([str(tmp_path), "-o", str(tmp_path), "--mask"]) == 1

    assert (tmp_path / "cup.png").read_bytes() == photo
    assert f"failed: {tmp_path / 'cup.jpg'}: would overwrite the input {tmp_path / 'cup.png'}" in capsys.readouterr().err


def test_an_output_folder_inside_the_input_folder_is_not_read_as_input(tmp_path, jpeg, capsys):
    source = tmp_path / "photos"
    source.mkdir()
    (source / "cup.jpg").write_bytes(jpeg)
    output = source / "cutouts"

    for _ in range(2):
        assert main([str(source), "-o", str(output)]) == 0
        assert "done 1, failed 0" in capsys.readouterr().out

    assert [path.relative_to(output).as_posix() for path in output.rglob("*")] == ["cup.png"]


@pytest.mark.parametrize("model", ["nowhere.onnx", "not-a-model.onnx"])
def test_a_model_that_cannot_be_loaded_exits_2_without_a_traceback(tmp_path, jpeg, capsys, model):
    source = tmp_path / "cup.jpg"
    source.write_bytes(jpeg)
    (tmp_path / "not-a-model.onnx").write_bytes(jpeg)

    with pytest.raises(SystemExit) as exited:
        main([str(source), "-o", str(tmp_path / "out"), "--model", str(tmp_path / model)])

    assert exited.value.code == 2
    assert f"cannot load the model {tmp_path / model}" in capsys.readouterr().err
