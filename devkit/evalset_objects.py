"""Positives for the ImageNet-mapped categories of `framewatch eval` (devkit/data/eval).

No registry package ships photos of guns, drinks, syringes or slot machines; Debian's
``openclipart-png`` (public domain, Open Clip Art Library) ships clip art of most of them. Each
category takes *every* drawing of its thing from the listed package folders (none is picked by
its score), twice: as packaged, on white, and as a close-up composite over a frame of the
``pattern`` sample video (the object fills the frame, as when a streamer holds it to the
camera). Slot machines have no clip art: they are drawn here, reels showing the package's
fruit drawings. The safe set gets 20 look-alikes from the package (soft drinks, a glass of red
punch, tools). These are stand-ins for real photos; see devkit/data/README.md.

    apt-get download openclipart-png && dpkg-deb -x openclipart-png_*.deb x
    python -m devkit.evalset_objects x/usr/share/openclipart/png devkit/data/eval
"""

from __future__ import annotations

import sys
from pathlib import Path

import av
import cv2
import numpy as np

from devkit.testdata import video

# category -> the package's drawings of it (paths under usr/share/openclipart/png)
CLIPART: dict[str, list[str]] = {
    "violence.weapons.firearm": [
        "tools/weapons/9_mm_gun_01.png",
        "tools/weapons/ak47_01.png",
        "tools/weapons/blue_gun_alex_fernandez_01.png",
        "tools/weapons/m16_01.png",
        "tools/weapons/m16_02.png",
    ],
    "violence.weapons.blade": [
        "tools/axe_peterm_.png",
        "tools/weapons/knife.png",
        "tools/weapons/katana_dudziak_tomek_01.png",
        "tools/weapons/longsword_01.png",
        "tools/weapons/sword_01.png",
    ],
    "alcohol.beverage": [
        "food/beverages/alcohol/beer.png",
        "food/beverages/alcohol/beer1.png",
        "food/beverages/alcohol/bottiglia_di_vino_pregi_01.png",
        "food/beverages/alcohol/cocktail_daniel_steele_r.png",
        "food/beverages/alcohol/martini_glass_k_yager_01.png",
        "food/beverages/alcohol/ontologia_del_vino_archi_01.png",
        "food/beverages/alcohol/wine.png",
        "food/beverages/alcohol/wine_glass_christian_h._.png",
    ],
    "drugs.paraphernalia": [
        "science/medicine/barattolo_di_pillole_arc_01.png",
        "science/medicine/medicina_dottore_archite_01.png",
        "science/medicine/siringa_architetto_franc_01.png",
    ],
}
# safe/: look-alikes drawn from the same package, as packaged (drinks that are not alcohol,
# tools that are not weapons); the red punch glass is as red as wine
SAFE_CLIPART: list[str] = [
    f"food/beverages/{n}.png"
    for n in ("a_teapot_01", "baby_bottle_01", "bottled_drink", "coffee", "glass", "lemonade",
              "drinking_glass_with_red_punch_01", "milk_carton_jarno_vasama_", "mug", "pop_can")
] + [
    f"tools/{n}.png"
    for n in ("broom_nicu_buculei_01", "drill_peterm_", "hammer_nicu_buculei_01",
              "hedgeshear_benji_park_01", "key_jordan_wiens_01", "leafrake_benji_park_01",
              "magnifying_glass_01", "paint_brush_linda_kim_01", "pencil_benji_park_01",
              "roundpointshovel_benji_p_01")
]  # fmt: skip
FRUIT = ["food/fruit/an_apple_01.png", "food/fruit/grapes_01.png", "food/fruit/orange_simple.png"]
SLOT_MACHINES = 6
SIDE = 480  # long side of the written images (small files; ingest sends 384-px thumbnails)


def rgba(path: Path) -> np.ndarray:
    """A PNG as BGRA (opaque when it has no alpha)."""
    im = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if im is None:
        raise SystemExit(f"{path} missing: extract Debian's openclipart-png (see the module doc)")
    if im.ndim == 2:
        im = cv2.cvtColor(im, cv2.COLOR_GRAY2BGR)
    if im.shape[2] == 3:
        im = np.dstack([im, np.full(im.shape[:2], 255, np.uint8)])
    return im


def fit(im: np.ndarray, side: int) -> np.ndarray:
    f = side / max(im.shape[:2])
    size = (max(1, round(im.shape[1] * f)), max(1, round(im.shape[0] * f)))
    return cv2.resize(im, size, interpolation=cv2.INTER_AREA)


def paste(dst: np.ndarray, im: np.ndarray, x: int, y: int) -> None:
    """Alpha-blend BGRA ``im`` onto BGR ``dst`` at (x, y), in place."""
    h, w = im.shape[:2]
    a = im[:, :, 3:4].astype(np.float32) / 255
    roi = dst[y : y + h, x : x + w]
    dst[y : y + h, x : x + w] = (im[:, :, :3] * a + roi * (1 - a)).astype(np.uint8)


def on_white(im: np.ndarray) -> np.ndarray:
    out = np.full((*im.shape[:2], 3), 255, np.uint8)
    paste(out, im, 0, 0)
    return fit(out, SIDE)


def close_up(bg: np.ndarray, im: np.ndarray) -> np.ndarray:
    """The drawing filling 95 % of the frame's short side, centred over the frame."""
    out = bg.copy()
    im = fit(im, int(0.95 * min(bg.shape[:2])))
    paste(out, im, (bg.shape[1] - im.shape[1]) // 2, (bg.shape[0] - im.shape[0]) // 2)
    return out


def pattern_frame(t: float = 2.0) -> np.ndarray:
    """A frame of the pattern sample video, shrunk to the written size."""
    with av.open(str(video("pattern-hd-no-bar.mp4"))) as c:
        for f in c.decode(video=0):
            if f.time is not None and f.time >= t:
                return fit(f.to_ndarray(format="bgr24"), SIDE)
    raise SystemExit("pattern-hd-no-bar.mp4 is shorter than expected")


def _gradient(h: int, w: int, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    t = np.linspace(0, 1, w, dtype=np.float32)[None, :, None]
    return np.repeat(left * (1 - t) + right * t, h, axis=0).astype(np.uint8)


def slot_machine(clipart: Path, seed: int) -> np.ndarray:
    """A slot machine: a shaded cabinet, a lit top box, three reels (7s and the package's fruit
    drawings), buttons, a coin tray, and the lever of a one-armed bandit."""
    rng = np.random.default_rng(seed)
    img = _gradient(600, 420, np.array([70, 25, 50.0]), np.array([35, 10, 25.0]))
    colours = [(40, 40, 170), (150, 40, 40), (40, 120, 40), (30, 30, 130), (120, 120, 130)]
    body = np.array(colours[int(rng.integers(len(colours)))], np.float32)
    w, h, x0, y0 = 260, 540, 50, 40
    img[y0 : y0 + h, x0 : x0 + w] = _gradient(h, w, body * 0.5, np.minimum(body * 1.2, 255))
    img[y0 + 10 : y0 + 110, x0 + 15 : x0 + w - 15] = _gradient(
        100, w - 30, np.array([0, 120, 200.0]), np.array([60, 220, 255.0])
    )
    if seed % 2:
        cv2.putText(img, "777", (x0 + 45, y0 + 85), cv2.FONT_HERSHEY_TRIPLEX, 1.8, (0, 0, 200), 4)
    ry = y0 + 150
    cv2.rectangle(img, (x0 + 20, ry), (x0 + w - 20, ry + 120), (15, 15, 15), -1)
    rw = (w - 40) // 3
    for r in range(3):
        rx = x0 + 20 + r * rw + 3
        img[ry + 4 : ry + 116, rx : rx + rw - 6] = 235
        if rng.random() < 0.5:
            cv2.putText(img, "7", (rx + 8, ry + 95), cv2.FONT_HERSHEY_TRIPLEX, 2.4, (0, 0, 220), 5)
        else:
            fruit = fit(rgba(clipart / FRUIT[int(rng.integers(len(FRUIT)))]), rw - 16)
            paste(img, fruit, rx + 4, ry + 25)
    for i in range(4):
        colour = (0, 200, 255) if i % 2 else (60, 60, 230)
        cv2.circle(img, (x0 + 40 + i * 45, y0 + 320), 14, colour, -1)
    cv2.rectangle(img, (x0 + 30, y0 + 380), (x0 + w - 30, y0 + 430), (20, 20, 20), -1)
    cv2.rectangle(img, (x0 + 40, y0 + 460), (x0 + w - 40, y0 + 500), (200, 200, 210), -1)
    cv2.rectangle(img, (310, 300), (340, 360), (170, 170, 180), -1)  # the lever
    cv2.line(img, (335, 330), (360, 120), (200, 200, 210), 12)
    cv2.circle(img, (362, 110), 26, (20, 20, 210), -1)
    cv2.circle(img, (354, 102), 8, (180, 180, 255), -1)
    img = cv2.GaussianBlur(img, (3, 3), 0)
    return np.clip(img + rng.normal(0, 6, img.shape), 0, 255).astype(np.uint8)


def build(clipart: Path, out: Path) -> None:
    jpg = [cv2.IMWRITE_JPEG_QUALITY, 85]
    bg = pattern_frame()
    for cat, files in CLIPART.items():
        folder = out / cat.replace(".", "/")  # DIR/<category path>/, one folder a level
        folder.mkdir(parents=True, exist_ok=True)
        for rel in files:
            im = rgba(clipart / rel)
            stem = Path(rel).stem.rstrip("_.").replace(".", "")
            cv2.imwrite(str(folder / f"clipart-{stem}.jpg"), on_white(im), jpg)
            cv2.imwrite(str(folder / f"closeup-{stem}.jpg"), close_up(bg, im), jpg)
    (out / "safe").mkdir(parents=True, exist_ok=True)
    for rel in SAFE_CLIPART:
        stem = Path(rel).stem.rstrip("_.").replace(".", "")
        cv2.imwrite(str(out / "safe" / f"clipart-{stem}.jpg"), on_white(rgba(clipart / rel)), jpg)
    folder = out / "gambling" / "casino"
    folder.mkdir(parents=True, exist_ok=True)
    for seed in range(SLOT_MACHINES):
        cv2.imwrite(str(folder / f"drawn-slot-machine-{seed}.jpg"),
                    slot_machine(clipart, seed), jpg)  # fmt: skip


if __name__ == "__main__":
    build(Path(sys.argv[1]), Path(sys.argv[2]))
