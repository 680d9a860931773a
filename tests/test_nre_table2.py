"""Table 2 harness end to end on tiny fixtures: AlexNet NRE pre-training on an image folder, then the three VOC
2007 classification settings on a VOC tree in the official layout; plus the VOC 11-point AP by hand."""
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from common.voc import VOC_CLASSES, image_labels, voc07_ap, voc07_map
from fixtures_formats import write_image_folder
from nre_tf.config import NREConfig

XML = """<annotation><filename>{id}.jpg</filename>{objects}</annotation>"""
OBJ = "<object><name>{name}</name><difficult>{d}</difficult></object>"


def write_voc(root: Path, items: dict, seed: int = 0):
    """items: split -> list of (id, [(class, difficult), ...])."""
    base = root / "VOCdevkit" / "VOC2007"
    for sub in ("JPEGImages", "Annotations", "ImageSets/Main"):
        (base / sub).mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for split, rows in items.items():
        (base / "ImageSets/Main" / f"{split}.txt").write_text("".join(f"{i}\n" for i, _ in rows))
        for i, objs in rows:
            Image.fromarray(rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)).save(base / "JPEGImages" / f"{i}.jpg")
            (base / "Annotations" / f"{i}.xml").write_text(XML.format(
                id=i, objects="".join(OBJ.format(name=n, d=int(d)) for n, d in objs)))
    return base


def test_voc_labels_and_ap_by_hand(tmp_path):
    base = write_voc(tmp_path, {"test": [("000001", [("cat", 0), ("dog", 1)])]})
    lab = image_labels(base / "Annotations" / "000001.xml")
    assert lab[VOC_CLASSES.index("cat")] == 1 and lab[VOC_CLASSES.index("dog")] == 0
    assert lab[VOC_CLASSES.index("car")] == -1
    # ranked pos, neg, pos (difficult ignored): 6 recall points at precision 1, 5 at 2/3
    assert voc07_ap([0.9, 0.8, 0.7, 0.95], [1, -1, 1, 0]) == pytest.approx((6 + 5 * 2 / 3) / 11)
    assert voc07_map(np.array([[0.9, 0.1], [0.1, 0.9]]), np.array([[1, -1], [-1, 1]])) == pytest.approx(1.0)


def test_table2_pipeline_on_tiny_fixtures(tmp_path):
    from nre_tf import voc_transfer as table2

    rng = np.random.default_rng(0)
    write_image_folder(tmp_path / "folder", {c: [rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
                                                 for _ in range(4)] for c in ("a", "b")})
    write_voc(tmp_path / "voc", {"trainval": [("000001", [("cat", 0)]), ("000002", [("dog", 0)])],
                                 "test": [("000003", [("cat", 0)]), ("000004", [("dog", 0), ("cat", 1)])]})
    cfg = NREConfig(dataset="image_folder", data_dir=str(tmp_path / "folder"), voc_dir=str(tmp_path / "voc"),
                    scale="smoke", workdir=str(tmp_path / "w"), batch_size=4, lambdas=(0.5, 0.25, 0.25),
                    ae_epochs=1, encoder_a_root=str(tmp_path / "a"))
    res = table2.run(cfg)
    assert set(res["_cells"]) == {(table2.ROW, c) for c in table2.COLUMNS.values()}
    assert all(0.0 <= v <= 100.0 + 1e-9 for v in res["_cells"].values()), res["_cells"]  # 11-point mean: float sum
    assert res["pretraining"]["clusters"] == 2
