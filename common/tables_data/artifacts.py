"""Tables 1-5 of Jenni & Favaro, "Self-Supervised Feature Learning by Learning to Spot Artifacts" (CVPR 2018),
transcribed from shared/papers/artifacts.md. All values are percentages as printed ("79.94%" -> 79.94); "-" is
None."""
from common.registry import CITED, OURS, Column, Row, Table

_CONV = tuple(Column(f"conv{i}") for i in range(1, 6))

TABLES = [
    Table(
        id="artifacts.table1", paper="artifacts", label="Table 1",
        caption=("Influence of different architectural choices on the classification accuracy on STL-10 [4]. "
                 "Convolutional layers were pretrained on the proposed self-supervised task and kept fixed "
                 "during transfer for classification."),
        unit="STL-10 test accuracy (%)", decimals=2, paper_decimals=2,
        row_header="Ablation experiment", datasets=("stl10",),
        columns=(Column("Accuracy"),),
        rows=(
            Row("Baseline (dropping rate = 0.5)", (79.94,), OURS),
            Row("(a) Input image as real", (74.99,), OURS),
            Row("(b) Distributed vs. local repair network", (77.51,), OURS),
            Row("(c) Dropping rate = 0.1", (70.92,), OURS),
            Row("(d) Dropping rate = 0.3", (76.26,), OURS),
            Row("(e) Dropping rate = 0.7", (81.06,), OURS),
            Row("(f) Dropping rate = 0.9", (79.60,), OURS),
            Row("(g) Without mask prediction", (78.44,), OURS),
            Row("(h) 3 x 3 encoder convolutions", (79.84,), OURS),
            Row("(i) No gating in repair layers", (79.66,), OURS),
            Row("(j) No history of corrupted examples", (79.76,), OURS),
            Row("(k) No repair network", (54.74,), OURS),
            Row("(l) GAN instead of damage & repair", (56.59,), OURS),
        ),
        notes=(
            "The last row is labelled '(1)' in the transcribed table and '(I)' in the text of Sec. 5.1; it is "
            "item (l) of the list (a)-(l).",
            "All rows are ablations of the authors' model, pre-trained on STL-10 and evaluated with frozen "
            "convolutional layers.",
        ),
    ),
    Table(
        id="artifacts.table2", paper="artifacts", label="Table 2",
        caption=("Comparison of test-set accuracy on STL-10 with other published results. Following the "
                 "guidelines in [4] the average accuracy from models trained on the ten pre-defined folds is "
                 "reported. We train a linear classifier on top of conv5 features for a fair comparison with "
                 "the other methods."),
        unit="STL-10 test accuracy (%)", decimals=2, paper_decimals=1, row_header="Model", datasets=("stl10",),
        columns=(Column("Accuracy"), Column("SD", unit="standard deviation over the 10 folds (% points, printed "
                                                         "as +-)")),
        rows=(
            Row("Dosovitskiy et al. [9]", (74.2, 0.4), CITED),
            Row("Dundar et al. [10]", (74.1, None), CITED),
            Row("Huang et al. [17]", (76.8, 0.3), CITED),
            Row("Swersky et al. [40]", (70.1, 0.6), CITED),
            Row("Zhao et al. [46]", (74.3, None), CITED),
            Row("Denton et al. [6] (finetuned)", (77.8, 0.8), CITED),
            Row("Ours (conv1-conv5 frozen)", (76.9, 0.2), OURS),
            Row("Ours (conv1-conv5 finetuned)", (80.1, 0.3), OURS),
        ),
        notes=("Printed as 'Dundar et al. et al. [10]'.",
               "Other rows are 'other published results' (caption)."),
    ),
    Table(
        id="artifacts.table3", paper="artifacts", label="Table 3",
        caption=("Transfer learning results for classification, detection and segmentation on Pascal VOC2007 "
                 "and VOC2012 compared to state-of-the-art feature learning methods."),
        unit="mAP (%)", decimals=1, paper_decimals=1, row_header="Model", text_columns=("[Ref]",),
        columns=(
            Column("Classification (mAP)", datasets=("imagenet", "voc2007")),
            Column("Detection (mAP)", datasets=("imagenet", "voc2007")),
            Column("Segmentation (mIU)", datasets=("imagenet", "voc2012"), unit="mIU (%)"),
        ),
        rows=(
            Row("Krizhevsky et al. [23]", (79.9, 56.8, 48.0), CITED, text=("[44]",)),
            Row("Random", (53.3, 43.4, 19.8), CITED, text=("[32]",)),
            Row("Agrawal et al. [1]", (54.2, 43.9, None), CITED, text=("[8]",)),
            Row("Bojanowski et al. [3]", (65.3, 49.4, None), CITED, text=("[3]",)),
            Row("Doersch et al. [7]", (65.3, 51.1, None), CITED, text=("[8]",)),
            Row("Donahue et al. [8]", (60.1, 46.9, 35.2), CITED, text=("[8]",)),
            Row("Jayaraman & Grauman [19]", (None, 41.7, None), CITED, text=("[19]",)),
            Row("Krähenbühl et al. [22]", (56.6, 45.6, 32.6), CITED, text=("[22]",)),
            Row("Larsson et al. [24]", (65.9, None, 38.0), CITED, text=("[24]",)),
            Row("Noroozi & Favaro [28]", (67.6, 53.2, 37.6), CITED, text=("[28]",)),
            Row("Noroozi et al. [29]", (67.7, 51.4, 36.6), CITED, text=("[29]",)),
            Row("Owens et al. [30]", (61.3, 44.0, None), CITED, text=("[30]",)),
            Row("Pathak et al. [32]", (56.5, 44.5, 29.7), CITED, text=("[32]",)),
            Row("Pathak et al. [31]", (61.0, 52.2, None), CITED, text=("[31]",)),
            Row("Wang & Gupta [42]", (63.1, 47.4, None), CITED, text=("[22]",)),
            Row("Zhang et al. [44]", (65.9, 46.9, 35.6), CITED, text=("[44]",)),
            Row("Zhang et al. [45]", (67.1, 46.7, 36.0), CITED, text=("[45]",)),
            Row("Ours", (69.8, 52.5, 38.1), OURS, text=("-",)),
        ),
        notes=(
            "The [Ref] column names the work each number was taken from.",
            "Ours: AlexNet discriminator pre-trained on ImageNet (dropping rate 0.7), fine-tuned on VOC2007 "
            "trainval (classification: Krähenbühl et al.'s framework, 10 random crops; detection: Fast-RCNN) and "
            "VOC2012 (segmentation: FCN, 100,000 iterations) (Sec. 5.2.2).",
        ),
    ),
    Table(
        id="artifacts.table4", paper="artifacts", label="Table 4",
        caption=("Validation set accuracy on ImageNet with linear classifiers trained on the frozen "
                 "convolutional layers after unsupervised pre-training. Results for the other methods are taken "
                 "from [29]."),
        unit="ImageNet validation accuracy (%)", decimals=1, paper_decimals=1,
        row_header="Model\\Layer", datasets=("imagenet",),
        columns=_CONV,
        rows=(
            Row("Krizhevsky et al. [23]", (19.3, 36.3, 44.2, 48.3, 50.5), CITED),
            Row("Random", (11.6, 17.1, 16.9, 16.3, 14.1), CITED),
            Row("Doersch et al. [7]", (16.2, 23.3, 30.2, 31.7, 29.6), CITED),
            Row("Donahue et al. [8]", (17.7, 24.5, 31.0, 29.9, 28.0), CITED),
            Row("Krähenbühl et al. [22]", (17.5, 23.0, 24.5, 23.2, 20.6), CITED),
            Row("Noroozi & Favaro [28]", (18.2, 28.8, 34.0, 33.9, 27.1), CITED),
            Row("Noroozi et al. [29]", (18.0, 30.6, 34.3, 32.5, 25.7), CITED),
            Row("Pathak et al. [32]", (14.1, 20.7, 21.0, 19.8, 15.5), CITED),
            Row("Zhang et al. [44]", (13.1, 24.8, 31.0, 32.6, 31.8), CITED),
            Row("Zhang et al. [45]", (17.7, 29.3, 35.4, 35.2, 32.8), CITED),
            Row("Ours", (19.5, 33.3, 37.9, 38.9, 34.9), OURS),
        ),
        notes=("Multinomial logistic regression on frozen conv layers resized to ~9200 features, framework of "
               "[44] (Sec. 5.2.3).",),
    ),
    Table(
        id="artifacts.table5", paper="artifacts", label="Table 5",
        caption=("Validation set accuracy on Places with linear classifiers trained on the frozen convolutional "
                 "layers after unsupervised pretraining. Results for the other methods are taken from [29]."),
        unit="Places validation accuracy (%)", decimals=1, paper_decimals=1, row_header="Model\\Layer",
        datasets=("imagenet", "places"),
        columns=_CONV,
        rows=(
            Row("Places-labels et al. [23]", (22.1, 35.1, 40.2, 43.3, 44.6), CITED),
            Row("ImageNet-labels et al. [23]", (22.7, 34.8, 38.4, 39.4, 38.7), CITED),
            Row("Random", (15.7, 20.3, 19.8, 19.1, 17.5), CITED),
            Row("Doersch et al. [7]", (19.7, 26.7, 31.9, 32.7, 30.9), CITED),
            Row("Donahue et al. [8]", (22.0, 28.7, 31.8, 31.3, 29.7), CITED),
            Row("Krähenbühl et al. [22]", (21.4, 26.2, 27.1, 26.1, 24.0), CITED),
            Row("Noroozi & Favaro [28]", (23.0, 31.9, 35.0, 34.2, 29.3), CITED),
            Row("Noroozi et al. [29]", (23.3, 33.9, 36.3, 34.7, 29.6), CITED),
            Row("Owens et al. [30]", (19.9, 29.3, 32.1, 28.8, 29.8), CITED),
            Row("Pathak et al. [32]", (18.2, 23.2, 23.4, 21.9, 18.4), CITED),
            Row("Wang & Gupta [42]", (20.1, 28.5, 29.9, 29.7, 27.9), CITED),
            Row("Zhang et al. [44]", (16.0, 25.7, 29.6, 30.3, 29.7), CITED),
            Row("Zhang et al. [45]", (21.3, 30.7, 34.0, 34.1, 32.5), CITED),
            Row("Ours", (23.3, 34.3, 36.9, 37.3, 34.4), OURS),
        ),
        notes=("Ours is pre-trained on ImageNet; the linear classifiers are trained on Places (205 scene "
               "categories) (Sec. 5.2.3).",),
    ),
]
