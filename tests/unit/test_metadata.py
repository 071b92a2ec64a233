"""What of a photo's metadata reaches its cut-out: the colour profile, and nothing that identifies
anyone (README, "Privacy"). Every entry point writes the pipeline's bytes as they are
(tests/integration/test_same_bytes.py), so the pipeline is where this is decided."""

import functools

import pytest
from helpers import PHONE_MARKS, open_result, phone_photo
from PIL import ExifTags, IptcImagePlugin

from handler.options import Options
from handler.pipeline import remove_background

OUTPUTS = {
    "png": Options(),
    "webp": Options(format="webp"),
    "jpeg-background": Options(background=(255, 255, 255), format="jpeg"),
    "mask": Options(mask=True),
    "mask-jpeg": Options(mask=True, format="jpeg"),
    "crop-max-size": Options(crop=True, max_size=100),
}
# Where Pillow puts what it reads of metadata from PNG, WebP and JPEG files.
METADATA_KEYS = ("exif", "xmp", "XML:com.adobe.xmp", "photoshop", "comment", "Comment", "Description", "Raw profile type exif")


@pytest.fixture(scope="module")
def profile() -> bytes:
    """A real RGB profile (littleCMS's sRGB), as a photo's Display P3 or Adobe RGB would be."""
    from PIL import ImageCms

    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


@pytest.fixture(scope="module")
def cut_out(segmenter, profile):
    @functools.cache
    def run(source_format: str, output: str) -> bytes:
        photo = phone_photo(source_format, icc_profile=profile)
        assert all(mark in photo for name, mark in PHONE_MARKS.items() if name.startswith("EXIF"))  # it carries them
        return remove_background(photo, OUTPUTS[output], segmenter=segmenter, max_pixels=40_000_000).data

    return run


@pytest.mark.parametrize("output", sorted(OUTPUTS))
@pytest.mark.parametrize("source_format", ["JPEG", "PNG", "WEBP", "HEIF", "TIFF"])
def test_a_cutout_keeps_the_colour_profile_and_nothing_that_identifies(cut_out, profile, source_format, output):
    # GIVEN a phone photo with GPS, serial number, capture time, MakerNote, a thumbnail of the
    # whole photo, XMP, IPTC or PNG text, and an RGB colour profile
    # WHEN it is cut out in any output
    data = cut_out(source_format, output)
    image = open_result(data)
    # THEN none of its identifying metadata is in the output's bytes
    assert [name for name, mark in PHONE_MARKS.items() if mark in data] == []
    assert b"Exif\x00\x00" not in data and b"xmpmeta" not in data and b"Photoshop 3.0" not in data
    # AND a reader finds no EXIF (no GPS, no thumbnail of the uncut photo), XMP, IPTC or text
    exif = image.getexif()
    assert len(exif) == 0 and exif.get_ifd(ExifTags.IFD.GPSInfo) == {} and exif.get_ifd(ExifTags.IFD.IFD1) == {}
    assert [key for key in METADATA_KEYS if key in image.info] == []
    if image.format == "JPEG":
        assert IptcImagePlugin.getiptcinfo(image) is None and data.count(b"\xff\xd8") == 1  # one picture: no thumbnail
    # AND the colour profile is kept wherever there is colour: a mask has none to tag
    assert image.info.get("icc_profile") == (None if output.startswith("mask") else profile)


def test_the_thumbnail_an_input_carries_shows_the_whole_uncut_photo():
    # The check above means something: the input's EXIF thumbnail is a readable picture of the
    # photo, background included, which a copied EXIF block would hand on with every cut-out.
    photo = open_result(phone_photo("JPEG"))
    thumbnail = photo.getexif().get_ifd(ExifTags.IFD.IFD1)
    start, length = thumbnail[ExifTags.Base.JpegIFOffset], thumbnail[ExifTags.Base.JpegIFByteCount]
    picture = open_result(photo.info["exif"][6:][start : start + length])
    assert (picture.format, picture.size) == ("JPEG", (80, 54))
