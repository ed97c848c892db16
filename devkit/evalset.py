"""Builds the small labelled set `framewatch eval` can be tried on (devkit/data/eval).

safe/: the test photos Debian's `darknet` package ships (MIT option of its copyright file),
shrunk to a 640 px long side, and two nearly flat wall frames of the doorknob sample video as
ingest samples them (the case the quality gate is for). sexual/: synthetic skin-toned shapes
painted on that wall, which the built-in models score high. They are stand-ins: no registry
package ships a picture a moderation model should flag, so this set shows that `eval` works,
not how accurate the models are on real content.

Objects for the COCO detector (signal/person/, signal/object/*/, violence/weapons/knife/):
scikit-image's public-domain/CC0 photos, and clip art pasted into them: Debian's
`openclipart-png` (public domain) and glyphs of Debian's `fonts-noto-color-emoji` (images
Apache-2.0). Each composite is one cut-out, turned and scaled, on one photo (see OBJECTS).

    apt-get download darknet openclipart-png fonts-noto-color-emoji
    for d in *.deb; do dpkg-deb -x "$d" x; done
    pip download --no-deps scikit-image==0.26.0 && unzip scikit_image-*.whl 'skimage/data/*'
    python -m devkit.evalset x/usr/share/darknet/data devkit/data/eval \
        --skimage skimage/data --openclipart x/usr/share/openclipart/png \
        --emoji-font x/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf
"""

from __future__ import annotations

import argparse
from pathlib import Path

import av
import cv2
import numpy as np

from devkit.testdata import video
from framewatch.pdq import hash_rgb

DARKNET = ["dog", "eagle", "giraffe", "horses", "kite", "person", "scream"]

# photos of people as they are (scikit-image: astronaut public domain, camera CC0)
PEOPLE = ["astronaut", "camera"]
# (folder, file, background, cut-out, degrees, centre x/y, long side in px); a background is
# a scikit-image photo ("sk:coffee"), a darknet photo ("dn:person") or "grey"; a cut-out is an
# openclipart path or "emoji:<codepoint>". Placements chosen where the detector sees the
# object (on a flat background most clip art reads as nothing); they show the wiring, not
# accuracy on real video.
OBJECTS = [
    ("signal/object/scissors", "scissors-on-coffee-table", "sk:coffee",
     "education/scissors.png", 150, (450, 330), 220),
    ("signal/object/scissors", "scissors-on-grey", "grey", "education/scissors.png", 60,
     (320, 240), 220),
    ("signal/object/scissors", "scissors2-on-coffee-table", "sk:coffee",
     "office/scissors_01.png", 150, (150, 300), 220),
    ("signal/object/bottle", "baby-bottle-astronaut", "sk:astronaut", "emoji:1f37c", 60,
     (120, 420), 150),
    ("signal/object/bottle", "bottle-person", "dn:person",
     "tools/bottle_jean_victor_balin_.png", 0, (330, 250), 90),
    ("signal/object/bottle", "drink-astronaut", "sk:astronaut",
     "food/beverages/bottled_drink.png", 0, (400, 430), 220),
    ("signal/object/wine_glass", "wine-glass-astronaut", "sk:astronaut", "emoji:1f377", 0,
     (120, 420), 220),
    ("signal/object/wine_glass", "wine-glass-coffee-table", "sk:coffee", "emoji:1f377", 0,
     (450, 330), 220),
    ("signal/object/wine_glass", "wine-glass-grey", "grey",
     "food/beverages/alcohol/wine_glass_christian_h._.png", 0, (320, 240), 220),
    ("violence/weapons/knife", "knife-coffee-table", "sk:coffee", "tools/weapons/knife.png",
     20, (120, 200), 200),
    ("violence/weapons/knife", "kitchen-knife-coffee-table", "sk:coffee", "emoji:1f52a", 160,
     (450, 330), 150),
    ("violence/weapons/knife", "kitchen-knife-coffee-table-2", "sk:coffee", "emoji:1f52a", 80,
     (120, 200), 260),
]  # fmt: skip


def skin_composite(base: np.ndarray, seed: int) -> np.ndarray:
    """Six skin-toned ellipses with darker outlines on a copy of a BGR image."""
    img = base.copy()
    rng = np.random.default_rng(seed)
    h, w = img.shape[:2]
    for _ in range(6):
        for colour, thick in (((120, 150, 210), -1), ((90, 110, 170), 3)):
            centre = (int(rng.integers(50, w - 50)), int(rng.integers(50, h - 50)))
            axes = (int(rng.integers(40, 150)), int(rng.integers(60, 200)))
            cv2.ellipse(img, centre, axes, float(rng.integers(0, 180)), 0, 360, colour, thick)
    return img


def doorknob_samples() -> list[tuple[np.ndarray, int]]:
    """The doorknob video at 1 sample/s as ingest sends it: a BGR thumbnail (384 px short
    side) and the PDQ quality of the full frame."""
    out = []
    with av.open(str(video("doorknob-hd-no-bar.mp4"))) as c:
        due = 0.0
        for f in c.decode(video=0):
            if f.time is not None and f.time + 1e-6 >= due:
                rgb = f.to_ndarray(format="rgb24")
                _, q = hash_rgb(rgb)
                small = cv2.resize(rgb[:, :, ::-1], (683, 384), interpolation=cv2.INTER_AREA)
                out.append((small, q))
                due += 1.0
    return out


def _shrink(img: np.ndarray, side: int = 640) -> np.ndarray:
    f = side / max(img.shape[:2])
    if f >= 1:
        return img
    size = (round(img.shape[1] * f), round(img.shape[0] * f))
    return cv2.resize(img, size, interpolation=cv2.INTER_AREA)


def emoji(font: Path, codepoint: str) -> np.ndarray:
    """One colour emoji glyph as a BGRA cut-out (Noto's bitmaps come at 109 px only)."""
    from PIL import Image, ImageDraw, ImageFont

    face = ImageFont.truetype(str(font), 109)
    im = Image.new("RGBA", (160, 160), (0, 0, 0, 0))
    ImageDraw.Draw(im).text((10, 10), chr(int(codepoint, 16)), font=face, embedded_color=True)
    return cv2.cvtColor(np.asarray(im), cv2.COLOR_RGBA2BGRA)


def cutout(path: Path) -> np.ndarray:
    """A clip-art PNG as BGRA, trimmed to its opaque part."""
    im = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if im is None:
        raise SystemExit(f"{path} missing: extract Debian's openclipart-png")
    if im.ndim == 2 or im.shape[2] == 3:
        im = cv2.cvtColor(im, cv2.COLOR_GRAY2BGRA if im.ndim == 2 else cv2.COLOR_BGR2BGRA)
    ys, xs = np.nonzero(im[:, :, 3] > 10)
    return im[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]


def paste(base: np.ndarray, bgra: np.ndarray, degrees: float, centre: tuple[int, int],
          long_side: int) -> np.ndarray:  # fmt: skip
    """A copy of BGR ``base`` with the cut-out turned, scaled to ``long_side`` and alpha-blended
    at ``centre`` (kept inside the picture)."""
    h, w = bgra.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), degrees, 1.0)
    c, s = abs(m[0, 0]), abs(m[0, 1])
    nw, nh = int(h * s + w * c), int(h * c + w * s)
    m[0, 2] += nw / 2 - w / 2
    m[1, 2] += nh / 2 - h / 2
    im = cv2.warpAffine(bgra, m, (nw, nh), flags=cv2.INTER_LINEAR, borderValue=(0, 0, 0, 0))
    f = long_side / max(im.shape[:2])
    im = cv2.resize(im, (max(1, int(im.shape[1] * f)), max(1, int(im.shape[0] * f))),
                    interpolation=cv2.INTER_AREA)  # fmt: skip
    out = base.copy()
    h, w = im.shape[:2]
    x0 = max(0, min(int(centre[0] - w / 2), base.shape[1] - w))
    y0 = max(0, min(int(centre[1] - h / 2), base.shape[0] - h))
    a = im[:, :, 3:4].astype(np.float32) / 255
    roi = out[y0 : y0 + h, x0 : x0 + w]
    roi[:] = (im[:, :, :3] * a + roi * (1 - a)).astype(np.uint8)
    return out


def build_objects(
    darknet_data: Path, skimage_data: Path, openclipart: Path, emoji_font: Path, out: Path
) -> None:
    """signal/person/ photos and the OBJECTS composites (see the module docstring)."""
    jpg = [cv2.IMWRITE_JPEG_QUALITY, 90]

    def background(name: str) -> np.ndarray:
        if name == "grey":
            return np.full((480, 640, 3), 200, np.uint8)
        kind, stem = name.split(":")
        p = skimage_data / f"{stem}.png" if kind == "sk" else darknet_data / f"{stem}.jpg"
        img = cv2.imread(str(p))
        if img is None:
            raise SystemExit(f"{p} missing: see `python -m devkit.evalset --help`")
        return _shrink(img)

    (out / "signal" / "person").mkdir(parents=True, exist_ok=True)
    for stem in PEOPLE:
        cv2.imwrite(str(out / "signal" / "person" / f"skimage-{stem}.jpg"),
                    background(f"sk:{stem}"), jpg)  # fmt: skip
    for folder, name, bg, src, degrees, centre, side in OBJECTS:
        cut = emoji(emoji_font, src[6:]) if src.startswith("emoji:") else cutout(openclipart / src)
        (out / folder).mkdir(parents=True, exist_ok=True)
        img = paste(background(bg), cut, degrees, centre, side)
        cv2.imwrite(str(out / folder / f"{name}.jpg"), img, jpg)


def build(darknet_data: Path, out: Path) -> None:
    (out / "safe").mkdir(parents=True, exist_ok=True)
    (out / "sexual").mkdir(parents=True, exist_ok=True)
    jpg = [cv2.IMWRITE_JPEG_QUALITY, 85]
    for name in DARKNET:
        img = cv2.imread(str(darknet_data / f"{name}.jpg"))
        if img is None:
            raise SystemExit(f"{darknet_data / name}.jpg missing: extract Debian's darknet")
        cv2.imwrite(str(out / "safe" / f"darknet-{name}.jpg"), _shrink(img), jpg)
    walls = [img for img, q in doorknob_samples() if q < 50]
    for i, img in enumerate(walls):
        cv2.imwrite(str(out / "safe" / f"doorknob-wall-{i}.jpg"), img, jpg)
    for seed in range(4):
        cv2.imwrite(str(out / "sexual" / f"composite-{seed}.jpg"),
                    skin_composite(walls[0], seed), jpg)  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m devkit.evalset", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    ap.add_argument("darknet_data", type=Path, help="darknet's data folder (its test photos)")
    ap.add_argument("out", type=Path, help="the eval folder to write (devkit/data/eval)")
    ap.add_argument("--skimage", type=Path, help="skimage/data of the scikit-image wheel")
    ap.add_argument("--openclipart", type=Path, help="openclipart-png's .../openclipart/png")
    ap.add_argument("--emoji-font", type=Path, help="NotoColorEmoji.ttf")
    a = ap.parse_args(argv)
    build(a.darknet_data, a.out)
    objects = (a.skimage, a.openclipart, a.emoji_font)
    if all(objects):
        build_objects(a.darknet_data, *objects, a.out)  # type: ignore[arg-type]
    elif any(objects):
        ap.error("the object images need all of --skimage, --openclipart and --emoji-font")


if __name__ == "__main__":
    main()
